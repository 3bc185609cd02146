"""The `drlab` command: train | sweep | tune | report | eval | record | plot | resume | list."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path

from drlab.cliparse import OneLineParser
from drlab.errors import (EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_WRITE_FAILED, Diverged, DrlabError,
                          write_failure)

USAGE = """\
drlab train ALGO ENV_ID [--preset NAME] [--seed N] [--total-steps N] [--run-dir DIR] [--env-package NAME]
            [hyperparameter flags]
drlab sweep ALGO ENV_ID --set NAME=V1,V2,... [--set NAME2=...] --seeds 0,1,2 [--preset NAME] [--jobs K] [--out DIR]
            [--backend local|ray] [--address ADDR] [--cpus-per-point K] [--env-package NAME]
drlab sweep --resume DIR [--backend local|ray]
drlab tune ALGO ENV_ID [--trials N] [--timeout S] [--seeds 0,1] [--space FILE.toml] [--set NAME=VALUE]
           [--storage URL] [--study NAME] [--jobs K] [--backend local|ray] [--out DIR]
drlab tune --resume DIR [--trials N_MORE]
drlab report RUN_OR_SWEEP_DIR... [--out report.html]
drlab eval RUN_DIR [--episodes N] [--stochastic] [--json]
drlab record RUN_DIR [--out FILE.mp4] [--stochastic] [--episodes N] [--max-steps M]
drlab plot RUN_DIR... [--out FILE.png]
drlab plot RUN_DIR --diagnostics [--out FILE.png]
drlab plot options RUN_DIR [--out DIR] [--dims I J] [--fixed I=V ...] [--slices N] [--slice-dims K L]
drlab resume RUN_DIR
drlab list

ENV_ID may be MODULE:ENV_ID (imports MODULE, e.g. corridor:Corridor-v0), and train and sweep take
--env-package NAME (repeatable) for packages that register envs on import (highway_env, minigrid).
`drlab train ALGO ENV_ID --help` lists every hyperparameter with the preset's value."""



def cmd_train(argv: list[str]) -> int:
    import tyro

    from drlab.algos import get_algo
    from drlab.config import DEFAULT_PRESET, build_config, preset_overrides
    from drlab.envs.sources import resolve_env
    from drlab.run.runner import train_config
    from drlab.run.upgrades import flag_aliases

    head = OneLineParser(prog="drlab train", add_help=False)
    head.add_argument("algo")
    head.add_argument("env_id")
    head.add_argument("--preset", default=DEFAULT_PRESET)
    head.add_argument("--env-package", dest="env_packages", action="append", default=[])
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    known, rest = head.parse_known_args(argv)
    module = get_algo(known.algo)
    aliases = flag_aliases(known.algo)  # flags of an older version (drlab.run.upgrades)
    rest = [part for arg in rest for part in aliases.get(arg, [arg])]
    # The env's modules imported; unknown env / missing optional dependency: one line, before anything else.
    env_id, packages = resolve_env(known.env_id, known.env_packages)
    defaults = build_config(module.Config, env_id, {**preset_overrides(known.algo, env_id, known.preset),
                                                    "env_packages": packages})
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            cfg = tyro.cli(module.Config, default=defaults, args=rest,
                           prog=f"drlab train {known.algo} {known.env_id}",
                           description=f"{known.algo} on {env_id}, preset '{known.preset}'.")
    except SystemExit as exit_:
        if exit_.code in (0, None):  # --help
            sys.stderr.write(captured.getvalue())
            raise
        raise DrlabError(tyro_message(captured.getvalue())) from None
    sys.stderr.write(captured.getvalue())  # warnings, if any
    cfg.env_id, cfg.env_packages = env_id, packages
    result = train_config(known.algo, cfg)
    return report(result)


def tyro_message(text: str) -> str:
    """tyro's boxed multi-line parse error as one line: the box's title and its message, up to the
    box's inner rule (after which comes help text)."""
    rows = [line.strip().strip("\u2502\u256d\u256e\u2570\u256f").strip() for line in text.splitlines()]
    title = rows[0].strip("\u2500 ") if rows else ""
    message = []
    for row in rows[1:]:
        if row and not row.strip("\u2500"):  # the rule between the message and the help text
            break
        message.append(row)
    body = " ".join(" ".join(message).split())
    if title and body.lower().startswith(title.lower() + ":"):  # "Unrecognized options: Unrecognized options: x"
        body = body[len(title) + 1:].lstrip()
    return f"{title.lower()}: {body}" if title and body else (body or title or "invalid arguments (see --help)")


def options_note(evaluation: dict) -> str:
    """How long options lasted in an evaluation of an agent with options, and each one's share."""
    options = evaluation.get("options")
    if not options:
        return ""
    shares = "/".join(f"{share:.0%}" for share in options["shares"])
    duration = options["mean_duration"]
    return f"; options last {duration:.1f} steps on average, shares {shares}" if duration else f"; option shares {shares}"


def report(result) -> int:
    if result.interrupted:
        print(f"interrupted; checkpoint saved in {result.dir}. Continue with: drlab resume {result.dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    s = result.summary
    print(f"run directory: {result.dir}")
    line = f"trained {s['steps']} steps in {s['train_seconds']:.1f} s ({s['sps']:.0f} steps/s)"
    if s["eval"] is not None:
        e = s["eval"]
        verdict = ""
        if s["threshold"] is not None:
            verdict = f", threshold {s['threshold']:g}: {'solved' if s['solved'] else 'not solved'}"
        line += f"; greedy evaluation over {e['episodes']} episodes: {e['mean']:.1f} +- {e['std']:.1f}{verdict}"
        line += options_note(e)
    print(line)
    return 0


def cmd_sweep(argv: list[str]) -> int:
    from drlab.sweep.cli import cmd_sweep as sweep

    return sweep(argv)


def cmd_tune(argv: list[str]) -> int:
    from drlab.tune.cli import cmd_tune as tune

    return tune(argv)


def cmd_eval(argv: list[str]) -> int:
    from drlab.evaluate import evaluate
    from drlab.run.rundir import load_agent
    from drlab.run.evaluation import FINAL_EVAL_SEED_OFFSET

    p = OneLineParser(prog="drlab eval", description="Evaluate a saved run's agent.")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of acting greedily")
    p.add_argument("--seed", type=int, default=None, help="env seed (default: the run's final-evaluation seed)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    p.add_argument("--max-episode-steps", type=int, default=None,
                   help="truncate episodes after this many steps (default: the limit the run trained with)")
    args = p.parse_args(argv)
    if args.episodes < 1:
        raise DrlabError(f"--episodes must be >= 1 (got {args.episodes})")
    positive_flag("--max-episode-steps", args.max_episode_steps)
    agent = load_agent(args.run_dir)
    seed = args.seed if args.seed is not None else agent.config.seed + FINAL_EVAL_SEED_OFFSET
    limit = args.max_episode_steps or agent.config.max_episode_steps
    result = evaluate(agent, agent.config.env_id, args.episodes, seed, greedy=not args.stochastic,
                      max_episode_steps=limit, frame_stack=agent.config.frame_stack)
    if args.json:
        print(json.dumps(result))
    else:
        kind = "greedy" if result["greedy"] else "stochastic"
        print(f"{agent.config.env_id}: {kind} return over {result['episodes']} episodes: "
              f"{result['mean']:.2f} +- {result['std']:.2f}{options_note(result)}")
    return 0


def cmd_record(argv: list[str]) -> int:
    from drlab.run.rundir import load_agent
    from drlab.video import record_video

    p = OneLineParser(prog="drlab record", description="Write an MP4 of episodes of a saved run's agent.")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, default=None, help="default: RUN_DIR/videos/greedy.mp4 (or stochastic.mp4)")
    p.add_argument("--stochastic", action="store_true")
    p.add_argument("--seed", type=int, default=0, help="env seed of the first episode (the next get seed + 1, ...)")
    p.add_argument("--episodes", type=int, default=1, help="episodes in the video, one after another")
    p.add_argument("--max-steps", type=int, default=10_000,
                   help="stop an episode after this many steps (the run's time limit applies too)")
    args = p.parse_args(argv)
    positive_flag("--episodes", args.episodes)
    positive_flag("--max-steps", args.max_steps)
    agent = load_agent(args.run_dir)
    kind = "stochastic" if args.stochastic else "greedy"
    out = args.out or args.run_dir / "videos" / f"{kind}.mp4"
    info = record_video(agent, agent.config.env_id, out, seed=args.seed, greedy=not args.stochastic,
                        max_steps=args.max_steps, episodes=args.episodes,
                        max_episode_steps=agent.config.max_episode_steps, frame_stack=agent.config.frame_stack)
    episodes = ", ".join(f"{ret:.1f} ({length} steps)" for ret, length in zip(info["returns"], info["lengths"]))
    print(f"wrote {info['path']} ({kind}, {len(info['returns'])} episode(s), returns: {episodes})")
    return 0


def positive_flag(flag: str, value: int | None) -> None:
    """A count flag given as 0 or less is a usage mistake: one line."""
    if value is not None and value < 1:
        raise DrlabError(f"{flag} must be >= 1 (got {value})")


def cmd_report(argv: list[str]) -> int:
    from drlab.report import build_report

    p = OneLineParser(prog="drlab report",
                      description="One self-contained HTML page (opens offline) of runs or a sweep: learning curves, "
                                  "every diagnostic, final evaluations per setting with IQM and bootstrap CIs, configs, "
                                  "summaries, videos and option pictures. A run or sweep still going shows what exists.")
    p.add_argument("dirs", type=Path, nargs="+", metavar="RUN_OR_SWEEP_DIR")
    p.add_argument("--out", type=Path, default=None,
                   help="default: DIR/report.html for one directory, else report.html here")
    args = p.parse_args(argv)
    out = args.out or (args.dirs[0] / "report.html" if len(args.dirs) == 1 else Path("report.html"))
    info = build_report(args.dirs, out)
    print(f"wrote {info['path']} ({info['bytes'] / 1e6:.1f} MB: {info['runs']} runs, {info['plots']} plots, "
          f"{info['videos']} videos) in {info['seconds']:.1f} s")
    return 0


def cmd_plot(argv: list[str]) -> int:
    from drlab.plots.curves import plot_learning_curves

    if argv and argv[0] == "options":
        return cmd_plot_options(argv[1:])

    p = OneLineParser(prog="drlab plot", description="Learning curves of one or more runs on one figure, or the "
                                                     "diagnostics of one run (--diagnostics).")
    p.add_argument("run_dirs", type=Path, nargs="+")
    p.add_argument("--out", type=Path, default=None, help="default: RUN_DIR/learning_curve.png for one run, else "
                                                          "curves.png; with --diagnostics RUN_DIR/diagnostics.png")
    p.add_argument("--title", default=None)
    p.add_argument("--diagnostics", action="store_true",
                   help="every train/* and perf/* metric of one run as small multiples in one PNG")
    args = p.parse_args(argv)
    if args.diagnostics:
        from drlab.plots.diagnostics import plot_diagnostics

        if len(args.run_dirs) != 1:
            raise DrlabError("--diagnostics takes one run directory")
        print(f"wrote {plot_diagnostics(args.run_dirs[0], args.out or args.run_dirs[0] / 'diagnostics.png')}")
        return 0
    out = args.out or (args.run_dirs[0] / "learning_curve.png" if len(args.run_dirs) == 1 else Path("curves.png"))
    print(f"wrote {plot_learning_curves(args.run_dirs, out, args.title)}")
    return 0


def cmd_plot_options(argv: list[str]) -> int:
    from drlab.plots.options import plot_options

    p = OneLineParser(prog="drlab plot options",
                      description="Q_Omega and termination maps per option (vectors) or the screens where each "
                                  "option starts and ends (frames), and the options over one greedy episode.")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, default=None, help="output folder (default: RUN_DIR/options)")
    p.add_argument("--dims", type=int, nargs=2, default=None, metavar=("I", "J"),
                   help="observation dimensions of the maps (default: pole angle x angular velocity on CartPole, "
                        "x x y on LunarLander)")
    p.add_argument("--fixed", nargs="+", default=[], metavar="I=VALUE",
                   help="values of the dimensions the maps hold fixed (default 0), e.g. --fixed 0=0.5 1=-0.2")
    p.add_argument("--slices", type=int, default=4, metavar="N",
                   help="option_choice.png: an N x N grid of slices of the greedy option choice (0: none; default 4)")
    p.add_argument("--slice-dims", type=int, nargs=2, default=None, metavar=("K", "L"),
                   help="the dimensions the slices step through, down and across (default: cart position x "
                        "velocity on CartPole, vx x vy on LunarLander)")
    p.add_argument("--seed", type=int, default=0, help="seed of the greedy episode")
    args = p.parse_args(argv)
    fixed = {}
    for item in args.fixed:
        index, _, value = item.partition("=")
        try:
            fixed[int(index)] = float(value)
        except ValueError:
            raise DrlabError(f"--fixed takes I=VALUE pairs such as 0=0.5 (got {item!r})") from None
    usage = plot_options(args.run_dir, args.out or args.run_dir / "options", args.dims, args.seed,
                         fixed, args.slices, args.slice_dims)
    shares = ", ".join(f"option {w}: {share:.0%}" for w, share in enumerate(usage["option_share"]))
    ratios = usage.get("doorway_termination_ratio")
    doorways = f"; termination near the doorways / elsewhere: {', '.join(f'{r:.2f}' for r in ratios)}" if ratios else ""
    print(f"wrote {', '.join(usage['pictures'])}{doorways}; greedy episode: return {usage['episode_return']:.1f}, "
          f"{usage['episode_steps']} steps, {usage['switches']} switches; active share {shares}")
    return 0


def cmd_resume(argv: list[str]) -> int:
    from drlab.run.runner import resume

    p = OneLineParser(prog="drlab resume", description="Continue a stopped run from its latest checkpoint.")
    p.add_argument("run_dir", type=Path)
    args = p.parse_args(argv)
    return report(resume(args.run_dir))


def cmd_list(argv: list[str]) -> int:
    from drlab.algos import ALGORITHMS, get_algo
    from drlab.config import list_presets
    OneLineParser(prog="drlab list", description="Algorithms, variants and presets.").parse_args(argv)
    presets = {name: list_presets(name) for name in ALGORITHMS}
    width = max(16, *(len(env_id) for found in presets.values() for env_id in found))
    for name in ALGORITHMS:
        module = get_algo(name)
        print(name)
        actions = ", ".join(kind.__name__ for kind in module.ACTION_SPACES)
        print(f"  spaces  observations: {module.OBSERVATIONS}; actions: {actions}")
        for variant, text in module.VARIANTS.items():
            print(f"  variant {variant:<{width}} {text}")
        for env_id, names in presets[name].items():
            print(f"  preset  {env_id:<{width}} {', '.join(names)}")
    return 0


COMMANDS = {"train": cmd_train, "sweep": cmd_sweep, "tune": cmd_tune, "report": cmd_report, "eval": cmd_eval, "record": cmd_record, "plot": cmd_plot,
            "resume": cmd_resume, "list": cmd_list}


def stdout_closed() -> bool:
    """Whether standard output is a pipe whose reader has gone; if so, quiet it for the exit."""
    import select

    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        closed = any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0))
    except (OSError, ValueError, AttributeError):  # no file descriptor behind stdout
        return False
    if closed:
        sys.stdout = open(os.devnull, "w")  # nothing more can reach the reader, the exit's flush included
    return closed


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"drlab: error: unknown command '{command}' (commands: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    from drlab.envs.sources import cwd_on_path

    cwd_on_path()  # a user's env module here imports, as under `python -m`
    try:
        return COMMANDS[command](rest)
    except DrlabError as err:
        print(f"drlab: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Diverged as err:
        print(f"drlab: error: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    except BrokenPipeError as err:
        if stdout_closed():  # the reader of our output went away (`drlab list | head`): nothing to say
            return 0
        print(f"drlab: error: a pipe to another process broke ({err.strerror}); an env process may have died",
              file=sys.stderr)
        return 1
    except OSError as err:
        print(f"drlab: error: {write_failure(err)}", file=sys.stderr)
        return EXIT_WRITE_FAILED
    except KeyboardInterrupt:
        print("drlab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED

if __name__ == "__main__":
    sys.exit(main())
