"""Running an algorithm: seeding, the services the training loop calls, periodic evaluation,
checkpoints, Ctrl-C / SIGTERM and summary.json; and the entry points train_config, train_from_preset
and resume.

The algorithm's ``train_loop(run, learner)`` owns the pipeline (act -> env step -> episode
bookkeeping -> storage -> update); it calls ``run.reset_envs()``, ``run.record_episodes(...)`` and
``run.end_step(n, metrics)`` and loops ``while run.running()``. Everything around it lives here,
once, for every algorithm.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from drlab.algos import get_algo
from drlab.config import DEFAULT_PRESET, build_config, pick_device, preset_overrides
from drlab.envs import make_vec_env, reward_threshold
from drlab.envs.autoreset import EpisodeStats, game_signals
from drlab.errors import Diverged, DrlabError
from drlab.evaluate import evaluate
from drlab.optim import crossings
from drlab.run.checkpoint import load_checkpoint, non_finite_weight, save_checkpoint, write_json
from drlab.run.logger import Logger, progress_bar
from drlab.run.rundir import (CHECKPOINT, CONFIG_FILE, LOCK_FILE, SUMMARY_FILE, RunLock, config_to_json, default_run_dir,
                              load_run_config, remove_empty_dirs, remove_stale_temp_files)
from drlab.run.signals import install_stop_signals, restore_signals

FINAL_EVAL_SEED_OFFSET = 1_000_000  # final evaluation episodes never share seeds with training
PERIODIC_EVAL_SEED_OFFSET = 500_000
VIDEO_SEED_OFFSET = 700_000
# Update metrics that must stay finite: every loss and every gradient norm (explained variance, say,
# is legitimately NaN when the targets do not vary).
GUARDED = ("loss", "grad_norm")


@dataclass
class RunResult:
    dir: Path
    summary: dict | None  # None when training was interrupted
    interrupted: bool = False


class Run:
    """The state of one training run around the algorithm's loop."""

    def __init__(self, algo: str, cfg, run_dir: Path, checkpoint: dict | None = None, on_eval=None):
        self.algo, self.cfg, self.dir = algo, cfg, Path(run_dir)
        # on_eval(step, mean) after each periodic evaluation; True stops the run as a Ctrl-C does
        # (a checkpoint, no summary): how drlab tune prunes a trial.
        self.on_eval = on_eval
        self.module = get_algo(algo)
        torch.set_num_threads(cfg.torch_threads)
        self.device = pick_device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        # With Ray runners the envs live in the runners: one here gives the spaces and the checks.
        local_envs = 1 if getattr(cfg, "runners", 0) else cfg.num_envs
        self.envs = make_vec_env(cfg.env_id, local_envs, training=True, max_episode_steps=cfg.max_episode_steps,
                                 frame_stack=cfg.frame_stack)
        try:
            self.module.check_env(cfg, self.envs)
            obs_space, action_space = self.envs.single_observation_space, self.envs.single_action_space
            self.agent = self.module.make_agent(cfg, obs_space, action_space, self.device)
            self.learner = self.module.Learner(cfg, self.agent, self.rng)
            self.threshold = reward_threshold(cfg.env_id)
            self.step = 0
            self.train_seconds = 0.0
            self.episodes = 0
            self.recent_returns: deque[float] = deque(maxlen=100)
            self.evals_done = 0
            self.solved_during_training = False
            self.interrupted = False
            self.resumed = checkpoint is not None
            self.saved_step: int | None = None  # the step of the newest checkpoint in the run directory
            if checkpoint is not None:
                self._restore(checkpoint)
                self.saved_step = self.step
        except BaseException:
            self.envs.close()
            raise
        self.episode_stats = EpisodeStats(cfg.num_envs)
        self.last_metrics: dict = {}
        # Wall time of this session by part of the pipeline (loops that time themselves add to it).
        self.seconds = {"env": 0.0, "inference": 0.0, "learn": 0.0}

    # ---- called by the algorithm's loop ------------------------------------------------------

    def reset_envs(self) -> np.ndarray:
        obs, _ = self.envs.reset(seed=self.env_seed())
        return obs

    def env_seed(self) -> int:
        """The seed the training envs are reset with (env i gets seed + i). A resumed run cannot
        restore env internals; it starts fresh episodes from a seed of its own."""
        return self.cfg.seed + (self.step if self.resumed else 0)

    def running(self) -> bool:
        cfg = self.cfg
        episodes_left = not cfg.total_episodes or self.episodes < cfg.total_episodes
        return self.step < cfg.total_steps and episodes_left and not self.interrupted and not self.solved_during_training

    def record_episodes(self, rewards, dones, valid, info=None) -> None:
        """Book raw rewards; log each finished episode's raw return (of the whole game: an env that
        trains on clipped rewards or lives reports the game in ``info``, see envs.autoreset.game_signals)."""
        self.record_game_steps(*game_signals(rewards, dones, valid, info))

    def record_game_steps(self, rewards, game_over, game_step) -> None:
        """:meth:`record_episodes` with the game's signals already taken from ``info``."""
        returns, lengths = self.episode_stats.update(rewards, game_over, game_step)
        for ret, length in zip(returns, lengths):
            self.episodes += 1
            self.recent_returns.append(float(ret))
            self.logger.log(self.step, self._elapsed(), {
                "episode/return": ret, "episode/length": length,
                "episode/reward_mean_100": self.reward_mean_100})
        if len(returns):
            self.pbar.set_postfix_str(f"return(100)={self.reward_mean_100:.1f}", refresh=False)

    def end_step(self, env_steps: int, metrics: dict) -> None:
        """Advance the step counter; stop a diverged run; log, evaluate and checkpoint when their
        intervals come round."""
        before, self.step = self.step, self.step + env_steps
        for name, value in metrics.items():  # the divergence guard: a few floats per update
            if name.endswith(GUARDED) and not math.isfinite(value := float(value)):
                raise Diverged(self._divergence(f"train/{name} is {value}"))
        self.pbar.update(env_steps)
        self.last_metrics.update(metrics)  # steps without an update log the latest update's figures
        cfg = self.cfg
        if crossings(before, self.step, cfg.log_interval):
            elapsed = self._elapsed()
            record = {f"train/{k}": float(v) for k, v in self.last_metrics.items()}
            session = max(elapsed - self._start_seconds, 1e-9)
            record["perf/sps"] = (self.step - self._start_step) / session
            # Where the wall time goes (loops that time themselves): env stepping, choosing actions, learning.
            record.update({f"perf/{part}_fraction": seconds / session for part, seconds in self.seconds.items() if seconds})
            self.logger.log(self.step, elapsed, record)
        if cfg.eval_interval and crossings(before, self.step, cfg.eval_interval):
            self._periodic_eval()
        if cfg.video_interval and crossings(before, self.step, cfg.video_interval):
            self._video()
        if cfg.checkpoint_interval and crossings(before, self.step, cfg.checkpoint_interval):
            self.save()

    def note(self, metrics: dict) -> None:
        """Log ``metrics`` at the current step now (events of the loop's own, e.g. a runner restarted)."""
        self.logger.log(self.step, self._elapsed(), metrics)

    # ---- around the loop ----------------------------------------------------------------------

    @property
    def reward_mean_100(self) -> float:
        return float(np.mean(self.recent_returns)) if self.recent_returns else float("nan")

    def _elapsed(self) -> float:
        return self.train_seconds + (time.perf_counter() - self._t0)

    def _periodic_eval(self) -> None:
        seed = self.cfg.seed + PERIODIC_EVAL_SEED_OFFSET + 1000 * self.evals_done
        self.evals_done += 1
        result = evaluate(self.agent, self.cfg.env_id, self.cfg.eval_episodes, seed, greedy=True,
                          max_episode_steps=self.cfg.max_episode_steps, frame_stack=self.cfg.frame_stack)
        self.logger.log(self.step, self._elapsed(), {"eval/mean": result["mean"], "eval/std": result["std"]})
        stop_at = self.cfg.stop_threshold if self.cfg.stop_threshold is not None else self.threshold
        solved = self.cfg.stop_on_solve and stop_at is not None and result["mean"] >= stop_at
        stop_asked = self.on_eval is not None and self.on_eval(self.step, result["mean"])  # every one reported
        if solved:
            self.solved_during_training = True
        elif stop_asked:
            self.interrupted = True

    def _video(self) -> None:
        """One greedy episode into videos/step-N.mp4, played by a copy of the agent in an env of its
        own: training's envs, random streams and (for options) active options are left as they were."""
        from drlab.video import record_video

        record_video(self.agent.fork(), self.cfg.env_id, self.dir / "videos" / f"step-{self.step:09d}.mp4",
                     seed=self.cfg.seed + VIDEO_SEED_OFFSET + self.step, greedy=True,
                     max_episode_steps=self.cfg.max_episode_steps, title=f"step {self.step:,}",
                     frame_stack=self.cfg.frame_stack)

    def _divergence(self, what: str) -> str:
        if self.saved_step is None:
            kept = "nothing was saved (no checkpoint had been written yet)"
        else:
            kept = f"kept the checkpoint of step {self.saved_step:,} (drlab resume {self.dir} continues from it)"
        return f"{self.algo} diverged at step {self.step:,}: {what}; {kept}"

    def save(self) -> None:
        """Write checkpoints/latest.pt, never from non-finite weights (that is a divergence)."""
        learner_state = self.learner.state_dict()
        if (bad := non_finite_weight(learner_state)) is not None:
            raise Diverged(self._divergence(f"weight {bad} is not finite"))
        (self.dir / CHECKPOINT).parent.mkdir(exist_ok=True)  # not its parents: a vanished run dir fails
        save_checkpoint(self.dir / CHECKPOINT, {
            "algo": self.algo,
            "step": self.step,
            "train_seconds": self._elapsed(),
            "episodes": self.episodes,
            "recent_returns": list(self.recent_returns),
            "evals_done": self.evals_done,
            "solved_during_training": self.solved_during_training,
            "rng": {"numpy": self.rng.bit_generator.state, "agent": self.agent.rng.bit_generator.state,
                    "torch": torch.get_rng_state(),
                    **({"cuda": torch.cuda.get_rng_state_all()} if self.device.type == "cuda" else {})},
            "learner": learner_state,
        })
        self.saved_step = self.step

    def _restore(self, ckpt: dict) -> None:
        if ckpt.get("algo") != self.algo:
            raise DrlabError(f"checkpoint is for {ckpt.get('algo')!r}, not {self.algo!r}")
        try:
            note = self.learner.load_state_dict(ckpt["learner"])  # replay learners say what they restored
            self.step = int(ckpt["step"])
            self.train_seconds = float(ckpt["train_seconds"])
            self.episodes = int(ckpt["episodes"])
            self.recent_returns.extend(ckpt["recent_returns"])
            self.evals_done = int(ckpt["evals_done"])
            self.solved_during_training = bool(ckpt["solved_during_training"])
            self.rng.bit_generator.state = ckpt["rng"]["numpy"]
            self.agent.rng.bit_generator.state = ckpt["rng"]["agent"]
            torch.set_rng_state(ckpt["rng"]["torch"])
            if "cuda" in ckpt["rng"] and self.device.type == "cuda":  # SAC's and TD3's noise is drawn on the device
                torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise DrlabError(f"checkpoint does not match this run's config ({err.__class__.__name__}: {err})"[:300]) from None
        if note:
            print(f"resuming at step {self.step:,}: {note}", file=sys.stderr)

    def execute(self) -> RunResult:
        """Train (from scratch or the restored checkpoint), then evaluate and write summary.json."""
        cfg = self.cfg
        try:
            self.logger = Logger(self.dir, resume_step=self.step if self.resumed else None)
        except BaseException:
            self.envs.close()
            raise
        self.pbar = progress_bar(cfg.total_steps, self.step, cfg.progress)
        self.pbar.set_description(f"{self.algo} {cfg.env_id} s{cfg.seed}")
        previous_handlers = install_stop_signals(self._stop_requested)
        try:
            self._t0 = time.perf_counter()
            self._start_step, self._start_seconds = self.step, self.train_seconds
            self.module.train_loop(self, self.learner)
            self.train_seconds = self._elapsed()
            self._t0 = time.perf_counter()  # the clock restarts from train_seconds: save() must not count twice
            self.save()
        finally:
            restore_signals(previous_handlers)
            self.pbar.close()
            try:
                self.logger.close()
            finally:
                self.envs.close()
        if self.interrupted:
            return RunResult(self.dir, None, interrupted=True)
        return RunResult(self.dir, self.finish())

    def _stop_requested(self, signum, frame) -> None:
        """The first Ctrl-C (or SIGTERM) asks the loop to stop at the end of its step, then a
        checkpoint is written and the env processes are closed; a second one interrupts at once."""
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True

    def finish(self) -> dict:
        cfg = self.cfg
        eval_result = None
        if cfg.final_eval_episodes:
            eval_result = evaluate(self.agent, cfg.env_id, cfg.final_eval_episodes,
                                   cfg.seed + FINAL_EVAL_SEED_OFFSET, greedy=True,
                                   max_episode_steps=cfg.max_episode_steps, frame_stack=cfg.frame_stack)
        solved = None
        if eval_result is not None and self.threshold is not None:
            solved = eval_result["mean"] >= self.threshold
        summary = {
            "algo": self.algo, "env_id": cfg.env_id, "seed": cfg.seed, "steps": self.step,
            "train_seconds": round(self.train_seconds, 3),
            "sps": round(self.step / max(self.train_seconds, 1e-9), 1),
            "eval": eval_result, "threshold": self.threshold, "solved": solved,
        }
        write_json(self.dir / SUMMARY_FILE, summary)
        self._log_hparams(eval_result)
        return summary

    def _log_hparams(self, eval_result: dict | None) -> None:
        """The config as TensorBoard hyperparameters with the final results as their metrics, so that
        TensorBoard's HParams tab compares the runs of a sweep (run directory: tb/, next to the scalars)."""
        from torch.utils.tensorboard import SummaryWriter

        from drlab.errors import writing
        from drlab.run.logger import TB_DIR

        hparams = {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v)
                   for k, v in config_to_json(self.algo, self.cfg).items() if k not in ("run_dir", "progress")}
        metrics = {"hparam/reward_mean_100": self.reward_mean_100, "hparam/train_seconds": self.train_seconds}
        if eval_result is not None:
            metrics["hparam/final_eval_mean"] = eval_result["mean"]
        metrics = {k: float(v) for k, v in metrics.items() if math.isfinite(v)}
        with writing(self.dir / TB_DIR):
            writer = SummaryWriter(log_dir=str(self.dir / TB_DIR))
            writer.add_hparams(hparams, metrics, run_name=".")
            writer.close()


# ---- entry points ------------------------------------------------------------------------------

def train_config(algo: str, cfg, env_checker: bool = True, on_eval=None) -> RunResult:
    """Train one run from a config object; a pure function of (algo, config) for local or remote use.

    The env's modules (``env_packages``) are imported, and a user's env gets Gymnasium's env checker
    (``env_checker``; a sweep's driver runs it once for all its points), before anything is written.
    The run directory is locked first (one writer at a time), then checked to be empty; the env and
    the spaces are checked before anything but the lock is written, and a run that fails there
    leaves no directory behind."""
    from drlab.envs.sources import check_user_env, env_packages_for

    cfg.validate()
    packages = env_packages_for(cfg.env_id, cfg.env_packages)
    if env_checker:
        check_user_env(cfg.env_id)
    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(algo, cfg.env_id, cfg.seed)
    cfg = dataclasses.replace(cfg, run_dir=str(run_dir), env_packages=packages)
    new_dirs = [d for d in (run_dir, *run_dir.parents) if not d.exists()]
    lock = run = None
    previous_handlers = interrupt_on_stop_signals()
    try:
        try:
            lock = RunLock(run_dir)
            if any(path.name != LOCK_FILE for path in run_dir.iterdir()):
                raise DrlabError(f"{run_dir} already holds files; choose another --run-dir or `drlab resume {run_dir}`")
            run = Run(algo, cfg, run_dir, on_eval=on_eval)
            write_json(run_dir / CONFIG_FILE, config_to_json(algo, cfg))
        except BaseException:
            if run is not None:
                run.envs.close()
            if lock is not None:
                lock.release()
            remove_empty_dirs(new_dirs)
            raise
        with lock:
            return run.execute()
    finally:
        restore_signals(previous_handlers)


def train_from_preset(algo: str, env_id: str, overrides: dict, preset: str = DEFAULT_PRESET) -> RunResult:
    """``env_id`` may be MODULE:ENV_ID, and ``overrides`` may name ``env_packages`` (see drlab.envs.sources)."""
    from drlab.envs.sources import resolve_env

    module = get_algo(algo)
    overrides = dict(overrides)
    env_id, packages = resolve_env(env_id, overrides.pop("env_packages", ()))
    values = {**preset_overrides(algo, env_id, preset), **overrides, "env_packages": packages}
    return train_config(algo, build_config(module.Config, env_id, values))


def resume(run_dir: Path, on_eval=None) -> RunResult:
    """Continue a stopped run from checkpoints/latest.pt (``on_eval``: as for :class:`Run`)."""
    run_dir = Path(run_dir)
    algo, cfg = load_run_config(run_dir)
    previous_handlers = interrupt_on_stop_signals()
    try:
        with RunLock(run_dir):
            remove_stale_temp_files(run_dir)  # of a killed writer: ours to clean now that we hold the lock
            if (run_dir / SUMMARY_FILE).exists():
                raise DrlabError(f"{run_dir} has already finished (summary.json exists); nothing to resume")
            checkpoint = load_checkpoint(run_dir / CHECKPOINT)
            return Run(algo, cfg, run_dir, checkpoint=checkpoint, on_eval=on_eval).execute()
    finally:
        restore_signals(previous_handlers)


def interrupt_on_stop_signals():
    """Outside the training loop (building the run, the final evaluation) a stop signal interrupts at
    once, as Ctrl-C does, so that the lock is released and SIGTERM also ends in exit status 130; the
    loop installs its own, cooperative handler."""
    return install_stop_signals(signal.default_int_handler)

