"""``drlab report``: one self-contained HTML page for runs or a sweep.

Plotly draws the figures: interactive (zoom, hover, hide a curve) and its JavaScript embeds in the
page, so the file opens offline and makes no network request (matplotlib PNGs would not zoom;
Bokeh and Altair need the same embedding and are no smaller). The page holds plotly.js once (about
4.7 MB), every figure's data, the videos and pictures as data: URIs, and no link to anything else.
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from pathlib import Path

import numpy as np

from drlab.plots.curves import mean_band
from drlab.plots.diagnostics import diagnostic_panels, series
from drlab.report.data import RunData, Target, load_targets
from drlab.report.stats import MIN_SEEDS_FOR_CI, aggregate

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf"]
CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1400px;color:#222;padding:0 1em}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0} td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:6px}
.wide{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:6px}
video{max-width:100%;max-height:420px} img{max-width:100%} .note{color:#666;font-size:.85em}
details{margin:.4em 0} summary{cursor:pointer;font-weight:600}
"""


class Page:
    """The HTML body and its figures, built in reading order."""

    def __init__(self):
        self.parts: list[str] = []
        self.figures: list[tuple[str, list, dict]] = []
        self.videos = 0

    def add(self, text: str) -> None:
        self.parts.append(text)

    def figure(self, traces: list, title: str, xlabel: str, ylabel: str = "", height: int = 440) -> str:
        div = f"plot{len(self.figures)}"
        layout = {"title": {"text": title, "font": {"size": 13 if height > 300 else 10}}, "height": height,
                  "margin": {"l": 50, "r": 10, "t": 44, "b": 40}, "xaxis": {"title": {"text": xlabel}},
                  "yaxis": {"title": {"text": ylabel}}, "legend": {"font": {"size": 10}, "orientation": "h", "y": -0.2, "yanchor": "top"},
                  "showlegend": height > 300, "modebar": {"orientation": "v"}}  # beside the plot, not over its title
        self.figures.append((div, traces, layout))
        return f'<div class="plot" id="{div}"></div>'

    def plotly(self, figure: dict) -> str:
        """A figure made elsewhere (plotly's JSON: data and layout), e.g. Optuna's."""
        div = f"plot{len(self.figures)}"
        layout = {**figure.get("layout", {}), "height": 440, "showlegend": figure.get("layout", {}).get("showlegend", True)}
        self.figures.append((div, figure.get("data", []), layout))
        return f'<div class="plot" id="{div}"></div>'

    def html(self, title: str) -> str:
        from plotly.offline import get_plotlyjs

        def config(layout: dict) -> str:  # the mode bar (zoom, pan, save) on hover over the big figures only
            return _js({"displaylogo": False, "responsive": True, **({} if layout["showlegend"] else
                                                                      {"displayModeBar": False})})
        calls = "\n".join(f"Plotly.newPlot({json.dumps(div)}, {_js(traces)}, {_js(layout)}, {config(layout)});"
                          for div, traces, layout in self.figures)
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
                f"<style>{CSS}</style><script>{get_plotlyjs()}</script></head><body>\n" + "\n".join(self.parts)
                + f"\n<script>\n{calls}\n</script>\n</body></html>\n")


def _js(value) -> str:
    """JSON for a <script>: non-finite numbers as null (a gap), no "</" that would end the script."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    return json.dumps(clean(value)).replace("</", "<\\/")


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def group_traces(target: Target, key: str, x: str = "step", band: bool = True) -> list:
    """Per group: its run's curve, or the mean over its runs (seeds) with a min-max band."""
    traces = []
    for i, group in enumerate(target.groups):
        color = COLORS[i % len(COLORS)]
        curves = [s for s in (series(r.records, key, x) for r in group.runs) if len(s[0])]
        if not curves:
            continue
        if len(curves) == 1:
            xs, ys = curves[0]
            name = group.label
        else:
            xs, ys, low, high = mean_band(curves)
            name = f"{group.label} ({len(curves)} seeds, min-max band)"
            if band:
                traces.append({"x": list(xs) + list(xs[::-1]), "y": list(high) + list(low[::-1]), "fill": "toself",
                               "fillcolor": _rgba(color, 0.18), "line": {"width": 0}, "hoverinfo": "skip",
                               "showlegend": False, "legendgroup": group.label, "type": "scatter"})
        traces.append({"x": list(xs), "y": list(ys), "name": name, "legendgroup": group.label, "type": "scatter",
                       "mode": "lines+markers" if key.startswith("eval/") else "lines", "line": {"color": color}})
    return traces


def curves_section(page: Page, target: Target) -> None:
    page.add("<h2>Learning curves</h2><div class=\"wide\">")
    traces = group_traces(target, "episode/reward_mean_100")
    if len(target.groups) <= 3 and all(len(g.runs) == 1 for g in target.groups):
        for i, group in enumerate(target.groups):
            xs, ys = series(group.runs[0].records, "episode/return")
            traces.insert(0, {"x": list(xs), "y": list(ys), "name": f"{group.label}: each episode", "type": "scatter",
                              "mode": "markers", "marker": {"size": 3, "color": _rgba(COLORS[i % len(COLORS)], 0.3)}})
    page.add(page.figure(traces, "episode return (raw): mean of the last 100 episodes", "environment steps"))
    evaluations = group_traces(target, "eval/mean")
    if evaluations:
        page.add(page.figure(evaluations, "periodic greedy evaluations (mean return)", "environment steps"))
    page.add(page.figure(group_traces(target, "episode/reward_mean_100", x="time_s"),
                         "mean of the last 100 episodes against wall time", "seconds of training"))
    if evaluations:
        page.add(page.figure(group_traces(target, "eval/mean", x="time_s"),
                             "periodic greedy evaluations against wall time", "seconds of training"))
    page.add("</div>")


def diagnostics_section(page: Page, target: Target) -> None:
    keys = {k for g in target.groups for r in g.runs for rec in r.records for k in rec}
    panels = diagnostic_panels(keys)
    if not panels:
        page.add("<h2>Diagnostics</h2><p class=\"note\">No train/* or perf/* metrics logged yet.</p>")
        return
    page.add("<h2>Diagnostics</h2><p class=\"note\">Every metric the runs logged, against environment steps "
             "(downsampled to at most 1000 points per series; several seeds: their mean).</p><div class=\"grid\">")
    for title, names in panels:
        traces = []
        for name in names:
            for trace in group_traces(target, name, band=False):
                if len(names) > 1:
                    trace["name"] = f"{name.split('/', 1)[1]}: {trace['name']}"
                    trace["line"] = {"dash": ["solid", "dot", "dash", "dashdot"][names.index(name) % 4],
                                     **trace["line"]}
                traces.append(trace)
        if len(names) > 1:  # small plots have no legend: the line styles are named in the title
            styles = ["solid", "dotted", "dashed", "dash-dot"]
            title += "<br>" + ", ".join(f"{styles[k % 4]}: {n.split('/', 1)[1].removesuffix('_fraction')}"
                                       for k, n in enumerate(names))
        page.add(page.figure(traces, title, "", height=240))
    page.add("</div>")


def _fmt(value, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def settings_table(page: Page, target: Target) -> None:
    """Per setting: the final greedy evaluation over its seeds, as Agarwal et al. (2021) recommend."""
    rows = []
    for group in target.groups:
        finals = [r.summary["eval"]["mean"] for r in group.runs if r.summary and r.summary.get("eval")]
        solved = [r.summary["solved"] for r in group.runs if r.summary and r.summary.get("solved") is not None]
        stats = aggregate(finals)
        ci = f"[{stats['ci'][0]:.1f}, {stats['ci'][1]:.1f}]" if stats["ci"] else "-"
        times = [r.summary["train_seconds"] for r in group.runs if r.summary]
        rows.append([group.label, f"{len(finals)}/{len(group.runs)}", _fmt(stats["iqm"]), ci, _fmt(stats["median"]),
                     f"[{_fmt(stats['min'])}, {_fmt(stats['max'])}]",
                     f"{sum(solved)}/{len(solved)}" if solved else "-",
                     _fmt(float(np.median(times)) if times else None)])
    page.add("<h2>Final evaluation per setting</h2>")
    page.add(_table(["setting", "finished runs", "IQM", "95% CI of the IQM", "median", "[min, max]", "solved",
                     "train s (median)"], rows))
    page.add(f"<p class=\"note\">Final greedy evaluation of each finished run. IQM: interquartile mean (25% "
             f"trimmed mean) over seeds; its 95% interval is a percentile bootstrap (SciPy, 2000 resamples), given "
             f"from {MIN_SEEDS_FOR_CI} seeds on. With fewer seeds a bootstrap has too few distinct resamples to mean "
             f"anything: read the min-max instead.</p>")


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _flat(d: dict, prefix: str = "") -> list[list]:
    rows = []
    for key, value in d.items():
        if isinstance(value, dict):
            rows += _flat(value, f"{prefix}{key}.")
        else:
            rows.append([f"{prefix}{key}", json.dumps(value) if isinstance(value, (list, tuple)) else _shown(value)])
    return rows


def _shown(value):
    """A float as a person reads it (4 significant digits: 24.66, 0.0003, 3.402e-05); the rest as is."""
    return format(value, ".4g") if isinstance(value, float) else value


def _data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def run_section(page: Page, run: RunData, open_: bool) -> None:
    state = "finished" if run.summary else "still going, or stopped (no summary.json yet)"
    page.add(f"<details{' open' if open_ else ''}><summary>{html.escape(run.label)}: {state}</summary>"
             f"<p class=\"note\">{html.escape(str(run.dir))}</p>")
    if run.summary:
        page.add("<b>summary.json</b>" + _table(["", ""], _flat(run.summary)))
    videos = run.videos
    if videos:
        page.add("<b>videos</b><div class=\"wide\">")
        for video in videos:
            page.videos += 1
            page.add(f"<figure><video controls preload=\"metadata\" src=\"{_data_uri(video, 'video/mp4')}\"></video>"
                     f"<figcaption class=\"note\">{html.escape(video.name)}</figcaption></figure>")
        page.add("</div>")
    for picture in run.pictures:
        page.add(f"<figure><img alt=\"{html.escape(picture.name)}\" src=\"{_data_uri(picture, 'image/png')}\">"
                 f"<figcaption class=\"note\">{html.escape(picture.name)}</figcaption></figure>")
    page.add("<details><summary>config.json</summary>" + _table(["", ""], _flat(run.config)) + "</details></details>")


def option_pictures(run: RunData) -> None:
    """An option-critic run's pictures, drawn now (``drlab plot options``) when it has none yet."""
    from drlab.errors import DrlabError
    from drlab.run.rundir import CHECKPOINT

    if run.algo != "option-critic" or run.pictures or not (run.dir / CHECKPOINT).is_file():
        return
    from drlab.plots.options import plot_options

    try:
        plot_options(run.dir, run.dir / "options", None, 0, {}, 4, None)
    except (DrlabError, OSError) as err:
        print(f"drlab: note: no option pictures for {run.dir}: {err}")


def study_section(page: Page, target: Target) -> None:
    """Optuna's own figures of a study: optimization history, parameter importances, parallel
    coordinates, intermediate values."""
    page.add("<h2>Study</h2><div class=\"wide\">")
    for title, figure in target.study:
        page.add(page.plotly(figure))
    page.add("</div>")
    missing = [title for title, figure in target.study if not figure.get("data")]
    if missing:
        page.add(f"<p class=\"note\">Empty until enough trials have completed: {html.escape(', '.join(missing))}.</p>")


def build_report(paths: list[Path], out: Path) -> dict:
    """Write the report of ``paths`` (run directories, or one sweep directory) to ``out``."""
    from drlab.run.checkpoint import atomic_write_bytes

    started = time.perf_counter()
    target = load_targets(paths)
    runs = [r for g in target.groups for r in g.runs]
    for run in runs:
        option_pictures(run)
    page = Page()
    page.add(f"<h1>{html.escape(target.title)}</h1><p class=\"note\">drlab report, "
             f"{time.strftime('%Y-%m-%d %H:%M')}: {len(runs)} run{'s' if len(runs) != 1 else ''}, "
             f"{sum(r.summary is not None for r in runs)} finished"
             + (f", {target.not_started} not started yet" if target.not_started else "") + "</p>")
    if target.study is not None:
        study_section(page, target)
    curves_section(page, target)
    if target.sweep is not None or len(runs) > 1:
        settings_table(page, target)
    diagnostics_section(page, target)
    page.add("<h2>Runs</h2>")
    for run in runs:
        run_section(page, run, open_=len(runs) == 1)
    data = page.html(target.title).encode()
    out = Path(out)
    atomic_write_bytes(out, lambda f: f.write(data))
    out.chmod(0o644)  # a page to share, not a private file
    return {"path": out, "bytes": len(data), "runs": len(runs), "plots": len(page.figures), "videos": page.videos,
            "seconds": time.perf_counter() - started}
