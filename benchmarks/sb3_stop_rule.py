"""drlab's CartPole presets against Stable-Baselines3 with rl-baselines3-zoo's hyperparameters, under
the same stop rule: a 10-episode greedy evaluation every 5,000 env steps, training stops once one
reaches 475. Time to solve is the wall time of training, evaluations included, for both.

    python benchmarks/sb3_stop_rule.py                       # dqn, ppo, a2c; seeds 0-4
    python benchmarks/sb3_stop_rule.py --algos ppo --seeds 0,1,2

Each measurement runs in a fresh process; per seed and algorithm drlab and SB3 alternate (which
goes first alternates too). A run that never reaches 475 within its budget (drlab: its preset's
total_steps; SB3: the zoo's n_timesteps) counts as not solved, and its time is its whole budget's.
Prints a row per run, then per algorithm the median times, their ratio and both solve rates, and
writes benchmarks/results/sb3-stop-rule.{md,json}. Needs stable-baselines3 (`pip install -e .[bench]`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, run_measurement  # noqa: E402

ENV, THRESHOLD, EVAL_EVERY, EVAL_EPISODES = "CartPole-v1", 475.0, 5_000, 10

# rl-baselines3-zoo's hyperparams/{dqn,ppo,a2c}.yml for CartPole-v1.
ZOO = {
    "dqn": dict(n_envs=1, n_timesteps=50_000, kwargs=dict(
        learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99,
        target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
        exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]))),
    "ppo": dict(n_envs=8, n_timesteps=100_000, kwargs=dict(
        n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
        learning_rate="lin_1e-3", clip_range="lin_0.2")),
    "a2c": dict(n_envs=8, n_timesteps=500_000, kwargs=dict(ent_coef=0.0)),
}


def sb3_measure(algo: str, seed: int) -> dict:
    import stable_baselines3 as sb3
    import torch
    from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    zoo = ZOO[algo]
    kwargs = dict(zoo["kwargs"])
    for name in ("learning_rate", "clip_range"):  # the zoo's "lin_X": X decaying linearly to 0
        if isinstance(kwargs.get(name), str):
            start = float(kwargs[name][4:])
            kwargs[name] = lambda remaining, start=start: remaining * start
    envs = make_vec_env(ENV, n_envs=zoo["n_envs"], seed=seed)
    model = getattr(sb3, algo.upper())("MlpPolicy", envs, seed=seed, device="cpu", verbose=0, **kwargs)
    stop = StopTrainingOnRewardThreshold(reward_threshold=THRESHOLD, verbose=0)
    evaluation = EvalCallback(make_vec_env(ENV, n_envs=1, seed=seed + 10_000), callback_on_new_best=stop,
                              n_eval_episodes=EVAL_EPISODES, eval_freq=max(1, EVAL_EVERY // zoo["n_envs"]),
                              deterministic=True, verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=zoo["n_timesteps"], callback=evaluation)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "steps": int(model.num_timesteps), "solved": evaluation.best_mean_reward >= THRESHOLD}


def drlab_measure(algo: str, seed: int) -> dict:
    from drlab.run.runner import train_from_preset

    with tempfile.TemporaryDirectory() as tmp:
        result = train_from_preset(algo, ENV, {
            "seed": seed, "eval_interval": EVAL_EVERY, "eval_episodes": EVAL_EPISODES, "stop_on_solve": True,
            "stop_threshold": THRESHOLD, "final_eval_episodes": 0, "progress": False, "run_dir": str(Path(tmp) / "r")})
        evals = [json.loads(line).get("eval/mean") for line in (Path(tmp) / "r" / "metrics.jsonl").read_text().splitlines()]
    best = max((e for e in evals if e is not None), default=float("-inf"))
    return {"seconds": result.summary["train_seconds"], "steps": result.summary["steps"], "solved": best >= THRESHOLD}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", default="dqn,ppo,a2c")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--measure", nargs=3, metavar=("LIBRARY", "ALGO", "SEED"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:  # one measurement, in this fresh process
        library, algo, seed = args.measure
        print(json.dumps((drlab_measure if library == "drlab" else sb3_measure)(algo, int(seed))))
        return
    rows, results = [], {}
    print("| algo | seed | library | seconds | steps | solved |\n|---|---|---|---|---|---|", flush=True)
    for algo in args.algos.split(","):
        results[algo] = {"drlab": [], "sb3": []}
        for i, seed in enumerate(int(s) for s in args.seeds.split(",")):
            order = ("drlab", "sb3") if i % 2 == 0 else ("sb3", "drlab")
            for library in order:
                line, stolen = run_measurement([sys.executable, __file__, "--measure", library, algo, str(seed)])
                m = {**json.loads(line), "seed": seed, "cpu_steal": round(stolen, 3)}
                results[algo][library].append(m)
                print(f"| {algo} | {seed} | {library} | {m['seconds']:.1f} | {m['steps']:,} | {m['solved']} |", flush=True)
    print()
    summary = ["| algo | drlab median s | SB3 median s | ratio (SB3 / drlab) | drlab solved | SB3 solved |",
               "|---|---|---|---|---|---|"]
    for algo, by_library in results.items():
        medians = {lib: statistics.median(m["seconds"] for m in runs) for lib, runs in by_library.items()}
        solved = {lib: sum(m["solved"] for m in runs) for lib, runs in by_library.items()}
        n = len(by_library["drlab"])
        summary.append(f"| {algo} | {medians['drlab']:.1f} | {medians['sb3']:.1f} | "
                       f"{medians['sb3'] / medians['drlab']:.1f}x | {solved['drlab']}/{n} | {solved['sb3']}/{n} |")
    print("\n".join(summary))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sb3-stop-rule.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / "sb3-stop-rule.md").write_text(
        f"drlab presets vs Stable-Baselines3 + rl-zoo on {ENV}, same stop rule ({EVAL_EPISODES}-episode greedy "
        f"evaluation every {EVAL_EVERY:,} env steps reaching {THRESHOLD:g}); `python benchmarks/sb3_stop_rule.py`, "
        f"{time.strftime('%Y-%m-%d')}. Seconds: wall time of training, evaluations included.\n\n"
        + "\n".join(summary) + "\n")


if __name__ == "__main__":
    main()
