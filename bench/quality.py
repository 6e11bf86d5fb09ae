"""The quality record (docs/quality.md): each shipped generator recipe against its real-vs-real floor.

For each recipe and training seed, the generator's images are compared with real training
images through the recipe's classifier (trained by ganctl, run in onnxruntime), with FID, KID,
PRDC, C2ST and, for conditional models, class accuracy; so are real held-out images (the
floor: what a perfect generator would score at this n) and uniform noise (what a generator
that learned nothing scores). It is the same computation as

    ganctl evaluate RUN --floor --n N -m fid -m kid -m prdc -m c2st \\
        --features '{plugin: classifier, model: CLASSIFIER_RUN}'

Runs are trained here (``ganctl train RECIPE --set seed=S``) unless given with ``--runs`` /
``--classifier``. Training takes a while on 2 CPU cores: the digits classifier 30 s, each
quickstart run under a minute, the Fashion-MNIST classifier about 8 minutes, each Fashion-MNIST
DCGAN about 13 minutes with JAX (docs/performance.md).

    python bench/quality.py quickstart --seeds 0 1 2
    python bench/quality.py fashion-mnist-dcgan --seeds 0 --n 10000
    python bench/quality.py quickstart --classifier runs/digits-classifier-X --runs runs/quickstart-*
    python bench/quality.py quickstart --classifier runs/digits-classifier-X --set model.spectral_norm=true
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import harness  # bench/harness.py (scripts run as python bench/NAME.py)
import numpy as np

SETUPS = {
    # generator recipe -> (its classifier's recipe, the n of the record)
    "quickstart": ("digits-classifier", 360),
    "digits-wgan-gp": ("digits-classifier", 360),
    "digits-ada": ("digits-classifier", 360),
    "digits-vae": ("digits-classifier", 360),
    "digits-cvae": ("digits-classifier", 360),
    "fashion-mnist-dcgan": ("fashion-mnist-classifier", 10_000),
    "fashion-mnist-sngan": ("fashion-mnist-classifier", 10_000),
    # 10 % of Fashion-MNIST (limit: 6000 on both splits): DiffAugment's claim
    "fashion-mnist-diffaugment": ("fashion-mnist-classifier", 6_000),
    # 300 sneakers (classes: [7], limit: 300): fine-tuned vs from scratch
    "fashion-mnist-finetune": ("fashion-mnist-classifier", 300),
    "fashion-mnist-scratch": ("fashion-mnist-classifier", 300),
}
METRICS = ["fid", "kid", "prdc", "c2st"]
HEADLINES = [("fid", "fid"), ("kid", "kid"), ("prdc", "precision"), ("prdc", "recall"), ("prdc", "density"),
             ("prdc", "coverage"), ("c2st", "roc_auc")]


def train(recipe: str, out: Path, seed: int | None, overrides: list[str] = ()) -> Path:
    """Train ``recipes/RECIPE.yaml`` into ``out`` (with ``seed`` and ``--set`` ``overrides`` when
    given); the run directory."""
    args = ["train", f"recipes/{recipe}.yaml", "--out", str(out), "-q"]
    if seed is not None:
        args += ["--set", f"seed={seed}"]
    for override in overrides:
        args += ["--set", override]
    print(f"training {recipe} (seed {seed if seed is not None else 'of the recipe'}) into {out} ...", flush=True)
    harness.run(harness.ganctl(*args))
    return out


def values(results: list[Any]) -> dict[str, float]:
    return {f"{r.metric}/{k}": float(v) for r in results for k, v in r.values.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", choices=sorted(SETUPS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (0)")
    parser.add_argument("--runs", type=Path, nargs="+", help="evaluate these generator runs instead of training")
    parser.add_argument("--classifier", type=Path, help="the classifier run to look through (else trained here)")
    parser.add_argument("--n", type=int, help="images per side (default: 360 for digits, 10000 for Fashion-MNIST)")
    parser.add_argument("--eval-seed", type=int, default=0, help="seed of the evaluation's choice of images (0)")
    parser.add_argument("--out", type=Path, help="where trained runs go (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write every value and protocol here")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a recipe override for the trained runs, as `ganctl train --set` (repeatable)")
    args = parser.parse_args()

    from ganctl.evaluation.metrics import evaluate, request
    from ganctl.evaluation.subjects import Subject, floor_subject, subject_from_run
    from ganctl.plugins import get_host

    classifier_recipe, default_n = SETUPS[args.recipe]
    n = args.n or default_n
    scratch = tempfile.TemporaryDirectory(prefix="ganctl-quality-")
    out = args.out or Path(scratch.name)
    classifier = args.classifier or train(classifier_recipe, out / classifier_recipe, None)
    runs = args.runs or [train(args.recipe, out / f"{args.recipe}-seed{s}", s, args.overrides) for s in args.seeds]

    host = get_host()
    features = {"plugin": "classifier", "model": str(classifier)}
    conditional = subject_from_run(runs[0], host).conditional
    metrics = METRICS + (["class-accuracy"] if conditional else [])
    requests = [request(host, name, features) for name in metrics]
    rows: dict[str, dict[str, float]] = {}
    protocols: dict[str, Any] = {}
    first = subject_from_run(runs[0], host)
    held_out, reference = floor_subject(first.data, host, first.spec, first.conditional,
                                                   trained_on=first.data)
    for run in runs:
        subject = subject_from_run(run, host)
        results = evaluate(subject, requests, host, n=n, seed=args.eval_seed, real=reference)
        rows[str(run)] = values(results)
        protocols[str(run)] = [r.to_dict() for r in results]
        print(f"{run}: " + ", ".join(f"{k} {v:.4g}" for k, v in rows[str(run)].items()
                                     if not k.startswith("class-accuracy/class_")), flush=True)
    floor = evaluate(held_out, requests, host, n=n, seed=args.eval_seed, real=reference)
    rows["floor"] = values(floor)
    protocols["floor"] = [r.to_dict() for r in floor]
    noise = Subject(
        name="uniform noise", spec=first.spec, conditional=first.conditional, data=first.data, engine="numpy",
        draw=lambda z, labels: z,
        sampler=lambda count, seed: (np.random.default_rng(seed).uniform(-1, 1, (count, *first.spec.shape))
                                     .astype(np.float32),
                                     np.arange(count) % first.spec.num_classes if first.conditional else None))
    rows["noise"] = values(evaluate(noise, requests, host, n=n, seed=args.eval_seed, real=reference))

    generated = [rows[str(run)] for run in runs]
    changed = f" with {', '.join(args.overrides)}" if args.overrides else ""
    print(f"\n{args.recipe}{changed}: n = {n} per side, classifier {classifier}, evaluation seed {args.eval_seed}\n")
    header = ["", *[f"{m} {k}" if m != k else m for m, k in HEADLINES]]
    if conditional:
        header.append("class acc.")
    keys = [f"{m}/{k}" for m, k in HEADLINES] + (["class-accuracy/class_accuracy"] if conditional else [])
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))

    def line(label: str, found: list[dict[str, float]]) -> None:
        cells = []
        for key in keys:
            items = [row[key] for row in found]
            if len(items) == 1:
                cells.append(f"{items[0]:.3g}")
            else:
                cells.append(f"{statistics.mean(items):.3g} ({min(items):.3g}-{max(items):.3g})")
        print(f"| {label} | " + " | ".join(cells) + " |")

    line(f"generated, {len(runs)} seed(s): mean (min-max)" if len(runs) > 1 else "generated", generated)
    for run, row in zip(runs, generated, strict=True):
        line(f"  {Path(run).name}", [row])
    line("floor: real held-out", [rows["floor"]])
    line("uniform noise", [rows["noise"]])
    ratios = ", ".join(f"{row['fid/fid'] / rows['floor']['fid/fid']:.2f}" for row in generated)
    aucs = ", ".join(f"{row['c2st/roc_auc']:.3f}" for row in generated)
    print(f"\nFID / floor: {ratios}; C2ST ROC-AUC: {aucs}")
    if args.json:
        args.json.write_text(json.dumps({"recipe": args.recipe, "n": n, "classifier": str(classifier),
                                         "rows": rows, "protocols": protocols}, indent=2))


if __name__ == "__main__":
    main()
