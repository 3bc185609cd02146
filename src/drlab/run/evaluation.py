"""Greedy evaluations of the agent while it trains and after, stop-on-solve, and videos of it playing.

Evaluation episodes never share seeds with training, nor with each other."""

from __future__ import annotations

from pathlib import Path

from drlab.evaluate import evaluate
from drlab.video import record_video

FINAL_EVAL_SEED_OFFSET = 1_000_000
PERIODIC_EVAL_SEED_OFFSET = 500_000
VIDEO_SEED_OFFSET = 700_000


class Evaluations:
    """``log(metrics)`` logs at the current step. ``on_eval(step, mean)`` is told every periodic
    evaluation; True asks the run to stop as a Ctrl-C does (a checkpoint, no summary): how drlab tune
    prunes a trial. ``threshold``: the env's reward threshold (None: none)."""

    def __init__(self, cfg, agent, run_dir: Path, threshold: float | None, log, on_eval=None):
        self.cfg, self.agent, self.dir, self.threshold = cfg, agent, Path(run_dir), threshold
        self.log, self.on_eval = log, on_eval
        self.done = 0  # periodic evaluations so far
        self.solved = False  # a periodic evaluation reached the stop threshold (with stop_on_solve)

    def _evaluate(self, episodes: int, seed: int) -> dict:
        cfg = self.cfg
        return evaluate(self.agent, cfg.env_id, episodes, seed, greedy=True, max_episode_steps=cfg.max_episode_steps,
                        frame_stack=cfg.frame_stack)

    def periodic(self, step: int) -> bool:
        """Evaluate and log; True when ``on_eval`` asks the run to stop."""
        result = self._evaluate(self.cfg.eval_episodes, self.cfg.seed + PERIODIC_EVAL_SEED_OFFSET + 1000 * self.done)
        self.done += 1
        self.log({"eval/mean": result["mean"], "eval/std": result["std"]})
        stop_at = self.cfg.stop_threshold if self.cfg.stop_threshold is not None else self.threshold
        solved = self.cfg.stop_on_solve and stop_at is not None and result["mean"] >= stop_at
        stop_asked = self.on_eval is not None and self.on_eval(step, result["mean"])  # every one reported
        self.solved = self.solved or solved
        return stop_asked and not solved

    def final(self) -> dict | None:
        """The evaluation summary.json reports (None with final_eval_episodes 0)."""
        if not self.cfg.final_eval_episodes:
            return None
        return self._evaluate(self.cfg.final_eval_episodes, self.cfg.seed + FINAL_EVAL_SEED_OFFSET)

    def video(self, step: int) -> None:
        """One greedy episode into videos/step-N.mp4, played by a copy of the agent in an env of its
        own: training's envs, random streams and (for options) active options are left as they were."""
        cfg = self.cfg
        record_video(self.agent.fork(), cfg.env_id, self.dir / "videos" / f"step-{step:09d}.mp4",
                     seed=cfg.seed + VIDEO_SEED_OFFSET + step, greedy=True, max_episode_steps=cfg.max_episode_steps,
                     title=f"step {step:,}", frame_stack=cfg.frame_stack)

    def state_dict(self) -> dict:
        return {"evals_done": self.done, "solved_during_training": self.solved}

    def load_state_dict(self, state: dict) -> None:
        self.done, self.solved = int(state["evals_done"]), bool(state["solved_during_training"])
