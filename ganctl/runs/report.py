"""``ganctl report``: one self-contained HTML page about a run (images inlined, no other files).

It holds the loss curves (per epoch), the curves of the metrics computed during training, of
the sample diversity and (for a classifier) of its held-out scores, with its confusion matrix and
ROC curves on the held-out split, the curves of a generative model's held-out values
(``held_out/<key>``), the sample grids over time (at least 320 pixels wide, the epoch under
each), the latest reconstructions, every ``ganctl evaluate`` result with its floor and verdict
(protocols collapsed), the recipe and ``run.json`` (collapsed). The images are
:mod:`ganctl.runs.report_images`'s.
"""

from __future__ import annotations

import base64
import html
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from ganctl.runs import report_images as images
from ganctl.runs.rundir import RunDir

MAX_GRIDS = 12  # sample grids shown: evenly spaced over the run, the final one always
HELD_OUT = "held_out/"  # the epoch records' keys of a generative model's held-out values


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


def _caption(path: Path, info: dict[str, Any]) -> str:
    """What a sample grid shows: ``epoch 10``, or ``final (epoch 38)``."""
    if path.stem.startswith("epoch-"):
        return f"epoch {int(path.stem.split('-')[1])}"
    return f"final (epoch {info.get('epoch')})" if info.get("epoch") is not None else "final"


def _grids(run: RunDir) -> list[Path]:
    files = sorted(p for p in run.samples.glob("epoch-*.png"))
    if len(files) > MAX_GRIDS - 1:
        step = len(files) / (MAX_GRIDS - 1)
        files = [files[int(i * step)] for i in range(MAX_GRIDS - 1)]
    final = run.samples / "final.png"
    if final.exists():
        files.append(final)
    return files


def _evaluations(evaluations: dict[str, dict[str, Any]]) -> list[str]:
    """Each metric's latest value with its floor and verdict, its protocol collapsed."""
    escape = html.escape
    parts = ["<h2>Evaluations (latest of each metric)</h2>",
             "<table><tr><th>metric</th><th>value</th><th>floor (real images)</th><th>verdict</th>"
             "<th>features</th></tr>"]
    sources = []
    for metric, record in evaluations.items():
        values = list(record["values"].items())
        key, value = values[0]
        floor = record.get("floor")
        low = f"{next(iter(floor['values'].values())):.4g}" if floor else "-"
        verdict = record.get("verdict", {}).get("line", "-" if not floor else "")
        extractor = record["protocol"].get("extractor", {})
        features = f"{extractor.get('name', '-')} ({str(extractor.get('sha256', ''))[:12]})" if extractor else "-"
        source = record["protocol"].get("features_source", {}).get("detail")
        if source:
            sources.append(source)
        rest = ", ".join(f"{k} {v:.4g}" for k, v in values[1:] if not k.startswith("class_"))
        protocol = json.dumps(record["protocol"], indent=1, sort_keys=True)
        floor_protocol = json.dumps(floor["protocol"], indent=1, sort_keys=True) if floor else ""
        parts.append(
            f"<tr><td>{escape(metric)}</td><td><b>{escape(f'{key} {value:.4g}')}</b><br><small>{escape(rest)}</small>"
            f"</td><td>{escape(low)}</td><td>{escape(verdict)}</td><td>{escape(features)}</td></tr>"
            f"<tr><td colspan='5'><details><summary>protocol of {escape(metric)}</summary><pre>{escape(protocol)}"
            "</pre>" + (f"<p>floor's protocol</p><pre>{escape(floor_protocol)}</pre>" if floor else "")
            + "</details></td></tr>")
    parts.append("</table>")
    parts += [f"<p>{escape(line)}</p>" for line in dict.fromkeys(sources)]
    return parts


def _classifier(found: tuple[Any, Any] | None) -> list[str]:
    """A classifier's held-out predictions as a confusion matrix and ROC curves."""
    if found is None:
        return []
    probabilities, labels = found
    return ["<h2>Held-out predictions</h2><div class='grids'>",
            f"<figure><img alt='confusion matrix' src='data:image/png;base64,"
            f"{images.confusion_matrix(probabilities, labels)}'></figure>",
            f"<figure><img alt='ROC curves' src='data:image/png;base64,{images.roc_curves(probabilities, labels)}'>"
            "</figure></div>"]


def render(run: RunDir, classifier: tuple[Any, Any] | None = None) -> str:
    """The report of ``run`` as one HTML document. ``classifier``: a classifier's class
    probabilities and the true labels of its held-out split, drawn as a confusion matrix and
    ROC curves."""
    info = run.read_info()
    records = run.read_metrics()
    escape = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>ganctl report: {escape(run.path.name)}</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;vertical-align:top}"
        "pre{background:#f6f6f6;padding:8px;font-size:12px;overflow:auto}"
        ".grids figure{display:inline-block;margin:6px;text-align:center}.grids img{image-rendering:pixelated}"
        "summary{cursor:pointer;color:#555}</style>",
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
        image = images.curves(series, title, xlabel)
        if image:
            parts.append(f"<h2>{escape(title)}</h2><img alt='{escape(title)}' src='data:image/png;base64,{image}'>")
    grids = _grids(run)
    if grids:
        parts.append("<h2>Samples over time</h2><p>A conditional model's grids have one column per class.</p>"
                     "<div class='grids'>")
        for path in grids:
            data, width = images.readable_grid(path)
            caption = escape(_caption(path, info))
            parts.append(f"<figure><img alt='samples, {caption}' width='{width}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{caption}</figcaption></figure>")
        parts.append("</div>")
    latest = _reconstructions(run)
    if latest is not None:
        name, data = latest
        parts.append("<h2>Reconstructions</h2><p>Held-out images (left of each pair) and the model's reconstructions "
                     f"(right), {escape(name)}.</p><div class='grids'><figure><img alt='{escape(name)}' "
                     f"src='data:image/png;base64,{data}' style='width:440px'><figcaption>{escape(name)}"
                     "</figcaption></figure></div>")
    parts += _classifier(classifier)
    evaluations = run.latest_evaluations()
    if evaluations:
        parts += _evaluations(evaluations)
    if run.recipe_path.exists():
        parts.append(f"<h2>Recipe</h2><details><summary>recipe.yaml</summary><pre>{escape(run.recipe_path.read_text())}"
                     "</pre></details>")
    parts.append(f"<h2>run.json</h2><details><summary>run.json</summary><pre>{escape(json.dumps(info, indent=2))}"
                 "</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)
