"""What a study leaves in its directory: study.md (every trial: state, score, settings, why it
ended) and best-preset.toml (the best trial's settings as a preset file for
``src/drlab/presets/ALGO/ENV.toml``)."""

from __future__ import annotations

import json
import math
import time

from drlab.tune.spec import TuneSpec
from drlab.tune.study import DIR, EVALS, PRUNED, REASON, RETRY_OF, counted, import_optuna, redact

TABLE_FILE = "study.md"
PRESET_FILE = "best-preset.toml"


def trial_settings(spec: TuneSpec, params: dict) -> dict:
    """A trial's sampled settings as config values (Optuna stores tuples as "64x64")."""
    from drlab.algos import get_algo
    from drlab.config import field_types
    from drlab.tune.space import sample

    optuna = import_optuna()
    return sample(optuna.trial.FixedTrial(params), spec.space(), spec.base(), field_types(get_algo(spec.algo).Config))


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:_}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def preset_text(spec: TuneSpec, best, trials: int) -> str:
    """The best trial as a [default] preset: the starting preset's settings, --set's, then the trial's."""
    from drlab.config import preset_overrides

    settings = {**preset_overrides(spec.algo, spec.env_id, spec.preset), **spec.fixed,
                **trial_settings(spec, best.params)}
    evals = best.user_attrs.get(EVALS, [])
    lines = [f"# {spec.algo} on {spec.env_id}: found by drlab tune (study {spec.study_name!r}, "
             f"{time.strftime('%Y-%m-%d')}), trial {best.number} of {trials}.",
             f"# Score: mean final greedy evaluation {best.value:.2f} over seeds {', '.join(map(str, spec.seeds))} "
             f"({', '.join(f'{v:.1f}' for v in evals)}); starting preset: {spec.preset}.",
             f"# Search space: {spec.space_where}. Measure it on other seeds before trusting it.",
             "[default]"]
    skipped = [name for name, value in settings.items() if value is None]  # TOML has no null
    if skipped:
        lines.insert(-1, f"# Left at their defaults (none): {', '.join(skipped)}.")
    lines += [f"{name} = {toml_value(value)}" for name, value in settings.items() if value is not None]
    return "\n".join(lines) + "\n"


def write_results(spec: TuneSpec, storage, echo=print) -> dict:
    """study.md and (when a trial completed) best-preset.toml; returns counts by state and the best."""
    from drlab.run.checkpoint import atomic_write_bytes
    from drlab.tune.study import open_study

    optuna = import_optuna()
    study = open_study(spec, storage)
    trials = study.get_trials(deepcopy=False)
    states = {s: sum(t.state.name == s for t in counted(trials)) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING",
                                                                          "WAITING")}
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    retried = {t.system_attrs.get(RETRY_OF) for t in trials}
    rows = []
    for t in trials:
        note = t.user_attrs.get(REASON) or t.user_attrs.get(PRUNED) or ""
        if t.state.name == "FAIL" and t.number in retried:
            note = (note or "its process stopped sending heartbeats (killed?)") + "; retried"
        if RETRY_OF in t.system_attrs:
            note = f"retry of trial {t.system_attrs[RETRY_OF]}" + (f"; {note}" if note else "")
        value = "" if t.value is None or not math.isfinite(t.value) else f"{t.value:.2f}"
        settings = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.params.items())
        rows.append(f"| {t.number} | {t.state.name.lower()} | {value} | {settings} | {t.user_attrs.get(DIR, '')} "
                    f"| {note} |")
    head = (f"# drlab tune: {spec.algo} on {spec.env_id}\n\nStudy {spec.study_name!r} in "
            f"{redact(spec.storage_url)}; seeds {', '.join(map(str, spec.seeds))}; {spec.trials} trials asked: "
            + ", ".join(f"{n} {s.lower()}" for s, n in states.items() if n)
            + f". Score: the mean final greedy evaluation over the seeds. Sampler {spec.sampler}, pruner "
            f"{spec.pruner['name']}. Search space: {spec.space_where}.\n\n"
            + (f"Best: trial {best.number}, {best.value:.2f}; its preset: {PRESET_FILE}.\n\n" if best else
               "No trial completed.\n\n")
            + "| trial | state | score | settings | runs | note |\n|---|---|---|---|---|---|\n")
    text = head + "\n".join(rows) + "\n"
    atomic_write_bytes(spec.out / TABLE_FILE, lambda f: f.write(text.encode()))
    if best is not None:
        preset = preset_text(spec, best, len(counted(trials)))
        atomic_write_bytes(spec.out / PRESET_FILE, lambda f: f.write(preset.encode()))
    return {"states": states, "best": best}


def study_view(out) -> dict:
    """What ``drlab report STUDY_DIR`` shows: a title, the trials' run directories (best first) and
    Optuna's figures as plotly JSON (each empty where the study has too few trials for it)."""
    from pathlib import Path

    from drlab.tune.spec import load_spec
    from drlab.tune.study import make_storage, open_study

    optuna = import_optuna()
    spec = load_spec(Path(out))
    storage = make_storage(spec.storage_url)
    study = open_study(spec, storage)
    trials = [t for t in study.get_trials(deepcopy=False) if DIR in t.user_attrs]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value).number if complete else None
    order = sorted(trials, key=lambda t: (t.number != best, -t.value if t.state.name == "COMPLETE" else math.inf,
                                          t.number))
    listed, seen = [], set()
    for t in order:
        if t.user_attrs[DIR] in seen:  # a retry shares its runs with the trial it repeats
            continue
        seen.add(t.user_attrs[DIR])
        score = f", {t.value:.1f}" if t.state.name == "COMPLETE" else ""
        label = f"trial {t.number} ({'best' if t.number == best else t.state.name.lower()}{score})"
        runs = Path(out) / t.user_attrs[DIR]
        listed.append((label, [runs / f"s{seed}" for seed in spec.seeds]))
    figures = []
    plots = optuna.visualization
    for title, draw in (("optimization history", plots.plot_optimization_history),
                        ("parameter importances", plots.plot_param_importances),
                        ("parallel coordinates", plots.plot_parallel_coordinate),
                        ("intermediate values (periodic evaluations)", plots.plot_intermediate_values)):
        try:
            figure = json.loads(draw(study).to_json())
        except (ValueError, RuntimeError, ZeroDivisionError):  # too few complete trials for this one
            figure = {"data": [], "layout": {"title": {"text": title}}}
        figure.setdefault("layout", {}).setdefault("title", {"text": title})
        figures.append((title, figure))
    storage.engine.dispose()
    title = (f"study: {spec.algo} on {spec.env_id}, {len(complete)} of {spec.trials} trials complete, seeds "
             f"{', '.join(map(str, spec.seeds))}")
    return {"title": title, "trials": listed, "figures": figures}
