"""Running an algorithm: the order of things around the algorithm's training loop; and the entry
points train_config, train_from_preset and resume.

The algorithm's ``train_loop(run, learner)`` owns the pipeline (act -> env step -> episode
bookkeeping -> storage -> update). It receives the run's services as parts of ``run``, each a
module of its own in drlab.run and testable alone, and calls their methods:

  ``run.clock``       (clock.PhaseClock) ``lap(phase)`` times the pipeline's phases;
  ``run.episodes``    (episodes.EpisodeBook) ``record(rewards, dones, valid, info)`` after each env step;
  ``run.reset_envs()``, ``run.env_seed()``, ``run.running()``, ``run.note(metrics)`` and
  ``run.end_step(env_steps, metrics)``, which advances the step and, in this order, guards against
  divergence (guard.DivergenceGuard), logs (logger.Logger), evaluates (evaluation.Evaluations),
  records a video and checkpoints when their intervals come round.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from drlab.algos import get_algo
from drlab.config import DEFAULT_PRESET, build_config, pick_device, preset_overrides
from drlab.envs import make_vec_env, reward_threshold
from drlab.errors import DrlabError
from drlab.optim import crossings
from drlab.run.checkpoint import load_checkpoint, random_state, restore_random_state, save_checkpoint, write_json
from drlab.run.clock import PhaseClock
from drlab.run.episodes import EpisodeBook
from drlab.run.evaluation import Evaluations
from drlab.run.guard import DivergenceGuard
from drlab.run.logger import Logger, log_hparams, progress_bar
from drlab.run.rundir import (CHECKPOINT, CONFIG_FILE, LOCK_FILE, SUMMARY_FILE, RunLock, config_to_json, default_run_dir,
                              load_run_config, remove_empty_dirs, remove_stale_temp_files)
from drlab.run.signals import install_stop_signals, restore_signals


@dataclass
class RunResult:
    dir: Path
    summary: dict | None  # None when training was interrupted
    interrupted: bool = False


class Run:
    """One training run: builds the envs, the agent, the learner and the services, then keeps the
    order of things around the algorithm's loop (see the module's docstring)."""

    def __init__(self, algo: str, cfg, run_dir: Path, checkpoint: dict | None = None, on_eval=None):
        self.algo, self.cfg, self.dir = algo, cfg, Path(run_dir)
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
            self.step = 0
            self.interrupted = False
            self.resumed = checkpoint is not None
            self.clock = PhaseClock()
            self.episodes = EpisodeBook(cfg.num_envs, self.note, self._show)
            self.evaluations = Evaluations(cfg, self.agent, self.dir, reward_threshold(cfg.env_id), self.note, on_eval)
            self.guard = DivergenceGuard(algo, self.dir)
            if checkpoint is not None:
                self._restore(checkpoint)
        except BaseException:
            self.envs.close()
            raise
        self.last_metrics: dict = {}
        self.logger = self.pbar = None  # opened by execute()

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
        episodes_left = not cfg.total_episodes or self.episodes.count < cfg.total_episodes
        return self.step < cfg.total_steps and episodes_left and not self.interrupted and not self.evaluations.solved

    def end_step(self, env_steps: int, metrics: dict) -> None:
        """Advance the step counter; stop a diverged run; log, evaluate and checkpoint when their
        intervals come round."""
        before, self.step = self.step, self.step + env_steps
        self.guard.check_metrics(self.step, metrics)
        self.pbar.update(env_steps)
        self.last_metrics.update(metrics)  # steps without an update log the latest update's figures
        cfg = self.cfg
        if crossings(before, self.step, cfg.log_interval):
            record = {f"train/{k}": float(v) for k, v in self.last_metrics.items()}
            record["perf/sps"] = (self.step - self._start_step) / self.clock.session()
            record.update(self.clock.fractions())  # where the wall time goes
            self.note(record)
        if cfg.eval_interval and crossings(before, self.step, cfg.eval_interval):
            self.interrupted = self.evaluations.periodic(self.step) or self.interrupted
        if cfg.video_interval and crossings(before, self.step, cfg.video_interval):
            self.evaluations.video(self.step)
        if cfg.checkpoint_interval and crossings(before, self.step, cfg.checkpoint_interval):
            self.save()

    def note(self, metrics: dict) -> None:
        """Log ``metrics`` at the current step now (events of the loop's own, e.g. a runner restarted)."""
        self.logger.log(self.step, self.clock.elapsed(), metrics)

    def _show(self, text: str) -> None:
        self.pbar.set_postfix_str(text, refresh=False)

    # ---- around the loop ----------------------------------------------------------------------

    def save(self) -> None:
        """Write checkpoints/latest.pt, never from non-finite weights (that is a divergence)."""
        learner_state = self.learner.state_dict()
        self.guard.check_weights(self.step, learner_state)
        (self.dir / CHECKPOINT).parent.mkdir(exist_ok=True)  # not its parents: a vanished run dir fails
        save_checkpoint(self.dir / CHECKPOINT, {
            "algo": self.algo, "step": self.step, "train_seconds": self.clock.elapsed(),
            **self.episodes.state_dict(), **self.evaluations.state_dict(),
            "rng": random_state(self.rng, self.agent.rng, self.device), "learner": learner_state})
        self.guard.saved(self.step)

    def _restore(self, ckpt: dict) -> None:
        if ckpt.get("algo") != self.algo:
            raise DrlabError(f"checkpoint is for {ckpt.get('algo')!r}, not {self.algo!r}")
        try:
            note = self.learner.load_state_dict(ckpt["learner"])  # replay learners say what they restored
            self.step = int(ckpt["step"])
            self.clock = PhaseClock(float(ckpt["train_seconds"]))
            self.episodes.load_state_dict(ckpt)
            self.evaluations.load_state_dict(ckpt)
            restore_random_state(ckpt["rng"], self.rng, self.agent.rng, self.device)
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise DrlabError(f"checkpoint does not match this run's config ({err.__class__.__name__}: {err})"[:300]) from None
        self.guard.saved(self.step)
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
            self.clock.start()
            self._start_step = self.step
            self.module.train_loop(self, self.learner)
            self.clock.stop()  # the final checkpoint and evaluation are not training
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
        train_seconds = self.clock.earlier
        eval_result = self.evaluations.final()
        threshold = self.evaluations.threshold
        solved = None
        if eval_result is not None and threshold is not None:
            solved = eval_result["mean"] >= threshold
        summary = {
            "algo": self.algo, "env_id": cfg.env_id, "seed": cfg.seed, "steps": self.step,
            "train_seconds": round(train_seconds, 3),
            "sps": round(self.step / max(train_seconds, 1e-9), 1),
            "eval": eval_result, "threshold": threshold, "solved": solved,
        }
        write_json(self.dir / SUMMARY_FILE, summary)
        # The config as TensorBoard hyperparameters with the final results as their metrics, so that
        # TensorBoard's HParams tab compares the runs of a sweep.
        hparams = {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v)
                   for k, v in config_to_json(self.algo, cfg).items() if k not in ("run_dir", "progress")}
        results = {"hparam/reward_mean_100": self.episodes.reward_mean_100, "hparam/train_seconds": train_seconds}
        if eval_result is not None:
            results["hparam/final_eval_mean"] = eval_result["mean"]
        log_hparams(self.dir, hparams, {k: float(v) for k, v in results.items() if math.isfinite(v)})
        return summary


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

