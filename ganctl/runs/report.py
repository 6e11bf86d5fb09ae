"""``ganctl report``: one self-contained HTML page about a run (images inlined, no other files).

It holds the loss curves (per epoch), the curves of the metrics computed during training, of
the sample diversity and (for a classifier) of its held-out scores, the curves of a generative
model's held-out values (``held_out/<key>``), the sample grids over time, the latest
reconstructions, every ``ganctl evaluate`` result with its
protocol, the recipe and ``run.json``. Plots are drawn with matplotlib's Agg backend (no display).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import defaultdict
from typing import Any

from ganctl.runs.rundir import RunDir

MAX_GRIDS = 12  # sample grids shown: evenly spaced over the run, the final one always
HELD_OUT = "held_out/"  # the epoch records' keys of a generative model's held-out values


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _curves(series: dict[str, list[tuple[int, float]]], title: str, xlabel: str) -> str | None:
    """One PNG (base64) with a line per series, or None when there is nothing to draw."""
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3.2))
    for name, points in sorted(series.items()):
        xs, ys = zip(*points, strict=True)
        axes.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=name)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    try:
        return _png(figure)
    finally:
        plt.close(figure)


def _series(records: list[dict[str, Any]], kind: str | None) -> dict[str, list[tuple[int, float]]]:
    found: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for record in records:
        if record.get("type") != kind:
            continue
        for key, value in record.items():
            if key not in ("step", "epoch", "type") and isinstance(value, (int, float)):
                found[key].append((int(record.get("epoch", 0)), float(value)))
    return found


def _held_out_apart(series: dict[str, list[tuple[int, float]]], held_out: bool) -> dict[str, list[tuple[int, float]]]:
    """The epoch records' series of held-out values (``held_out``) or the others (the losses)."""
    return {k: v for k, v in series.items() if k.startswith(HELD_OUT) == held_out}


def _reconstructions(run: RunDir) -> tuple[str, str] | None:
    """The latest reconstruction grid (final, else the newest epoch's), base64; None without one."""
    final = run.samples / "reconstructions-final.png"
    found = [final] if final.exists() else sorted(run.samples.glob("reconstructions-epoch-*.png"))[-1:]
    return (found[0].stem, base64.b64encode(found[0].read_bytes()).decode()) if found else None


def _grids(run: RunDir) -> list[tuple[str, str]]:
    files = sorted(p for p in run.samples.glob("epoch-*.png"))
    if len(files) > MAX_GRIDS - 1:
        step = len(files) / (MAX_GRIDS - 1)
        files = [files[int(i * step)] for i in range(MAX_GRIDS - 1)]
    final = run.samples / "final.png"
    if final.exists():
        files.append(final)
    return [(p.stem, base64.b64encode(p.read_bytes()).decode()) for p in files]


def render(run: RunDir) -> str:
    """The report of ``run`` as one HTML document."""
    info = run.read_info()
    records = run.read_metrics()
    escape = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>ganctl report: {escape(run.path.name)}</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;vertical-align:top}"
        "pre{background:#f6f6f6;padding:8px;font-size:12px;overflow:auto}"
        ".grids figure{display:inline-block;margin:4px}.grids img{image-rendering:pixelated;width:220px}</style>",
        "</head><body>",
        f"<h1>{escape(run.path.name)}</h1>",
        f"<p>{escape(str(info.get('model')))} on {escape(str(info.get('data')))}, backend "
        f"{escape(str(info.get('backend')))}, status {escape(str(info.get('status')))}, "
        f"step {info.get('step')}, epoch {info.get('epoch')}; ganctl {escape(str(info.get('ganctl')))}</p>",
    ]
    epochs = _series(records, "epoch")
    for title, series, xlabel in (("Losses (epoch means)", _held_out_apart(epochs, False), "epoch"),
                                  ("Held-out values (mean over the held-out split)", _held_out_apart(epochs, True),
                                   "epoch"),
                                  ("Metrics during training", _series(records, "eval"), "epoch"),
                                  ("Held-out scores (classifiers)", _series(records, "validation"), "epoch"),
                                  ("Sample diversity (1: as varied as the data)", _series(records, "diversity"),
                                   "epoch")):
        image = _curves(series, title, xlabel)
        if image:
            parts.append(f"<h2>{escape(title)}</h2><img alt='{escape(title)}' src='data:image/png;base64,{image}'>")
    grids = _grids(run)
    if grids:
        parts.append("<h2>Samples over time</h2><div class='grids'>")
        parts += [f"<figure><img alt='{escape(n)}' src='data:image/png;base64,{data}'>"
                  f"<figcaption>{escape(n)}</figcaption></figure>" for n, data in grids]
        parts.append("</div>")
    latest = _reconstructions(run)
    if latest is not None:
        name, data = latest
        parts.append("<h2>Reconstructions</h2><p>Held-out images (left of each pair) and the model's reconstructions "
                     f"(right), {escape(name)}.</p><div class='grids'><figure><img alt='{escape(name)}' "
                     f"src='data:image/png;base64,{data}' style='width:440px'><figcaption>{escape(name)}"
                     "</figcaption></figure></div>")
    evaluations = run.latest_evaluations()
    if evaluations:
        parts.append("<h2>Evaluations (latest of each metric) and their protocols</h2><table>"
                     "<tr><th>metric</th><th>values</th><th>protocol</th></tr>")
        for metric, record in evaluations.items():
            values = ", ".join(f"{k} {v:.5g}" for k, v in record["values"].items())
            protocol = json.dumps(record["protocol"], indent=1, sort_keys=True)
            parts.append(f"<tr><td>{escape(metric)}</td><td>{escape(values)}</td>"
                         f"<td><pre>{escape(protocol)}</pre></td></tr>")
        parts.append("</table>")
    if run.recipe_path.exists():
        parts.append(f"<h2>Recipe</h2><pre>{escape(run.recipe_path.read_text())}</pre>")
    parts.append(f"<h2>run.json</h2><pre>{escape(json.dumps(info, indent=2))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
