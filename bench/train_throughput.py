"""Training throughput: ganctl's dcgan step against a hand-written step and a plain PyTorch loop.

Targets (issues): ganctl within 3 % of a hand-written step of the same Keras networks on every
backend; on its best CPU backend at least 1.3x a plain PyTorch loop (nn.Module + torch.optim), at
8x8 and at 28x28, and at least 1.0x on JAX; on a GPU (where the plain PyTorch loop runs on the GPU
too) at least 2x that eager loop.

Variants, per case (the quickstart's 8x8 dcgan; a 28x28 one of Fashion-MNIST's shape):

* ``ganctl``: the model, optimizers and engine built as ``open_session`` builds them
  (``train.jit: auto``), stepped by the trainer's own ``Trainer.train_step``: per iteration each
  player updates once on the same batch, with latents drawn on the host, and every logged value
  comes back to the host as a float.
* ``ganctl, k steps per call`` (JAX and TensorFlow; ``--fused K``, default 4, the default of
  ``train.steps_per_execution`` there): the same, through the loop's fused path
  (``Trainer.train_steps``): k steps, each with its own latents, in one call into the engine, every
  logged value back on the host. Its slices are whole calls (slice and round lengths are rounded
  up to multiples of k); its losses equal the per-step loop's to float rounding (tests/test_fused_steps.py).
* ``hand-written``: a second copy of the same Keras networks (same seed: same initial weights)
  trained by a minimal step written for the backend, with no ganctl code in it: JAX
  ``jax.value_and_grad`` over ``stateless_call`` + ``optimizer.stateless_apply`` under
  ``jax.jit``; TensorFlow ``GradientTape`` in ``tf.function`` (no XLA, as ganctl on CPUs);
  PyTorch ``loss.backward()`` + ``optimizer.apply`` with the other network frozen (eager, as
  ganctl). Same loss, batch, latents and player order as ganctl (so the losses must match,
  which is checked during warm-up); each player's loss comes back as a float every step.
* ``plain PyTorch``: an ``nn.Module`` DCGAN with the same layer shapes, ``torch.optim.Adam``
  and ``BCEWithLogitsLoss``, written like the PyTorch DCGAN tutorial: one ``z`` per iteration,
  D step on ``fake.detach()``, then G step through the same ``fake``, ``.item()`` each step.
  ``plain PyTorch (fresh z)`` does ganctl's work instead (a new ``z`` and generator pass for
  each player). Ratios divide by the tutorial loop.

Every torch process runs twice by default: with torch's default thread count (all cores) and
with one thread, because on a 2-core machine shared with other work torch's OpenMP threads can
collapse (10x slower), while JAX and TensorFlow degrade gracefully.

Method: the Keras backend is fixed per process, so each backend (and each torch thread setting)
runs in a child process. The parent starts the children one after another (each builds and
compiles while the others wait), then runs rounds. A round is made of short slices; in each
slice every child in turn runs a few iterations of each of its variants (A then B, next slice B
then A) while the other children sit idle on a pipe. So all variants are
measured close together in time, and the ratios are *paired*: computed within each round, then
summarised as median [min, max] over rounds. Warm-up and compilation are not timed. A child that
is very slow in a round (past ``--cap`` seconds) ends its round early rather than stall the run.

Usage:
    python bench/train_throughput.py                 # full run: both cases (~8-10 min on 2 cores)
    python bench/train_throughput.py --quick         # smoke run: 8x8, short rounds (~1-2 min)
    python bench/train_throughput.py --cases 8x8 --backends jax tensorflow --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness  # bench/harness.py (scripts run as python bench/NAME.py)
from train_variants import HAND_STEPS, fixed_batch, ganctl_variant, plain_torch

BACKENDS = ("jax", "tensorflow", "torch")
PLAIN = "plain-torch"

# The benchmark case is pinned here rather than read from recipes/, so that editing a recipe
# does not silently change what is measured: the quickstart's dcgan as of the issue (8x8
# digits, latent_dim 32, filters 64, non-saturating BCE, batch 64, Adam 2e-4 / 0.5).
RECIPE: dict[str, Any] = {
    "name": "bench",
    "seed": 0,
    "data": {"plugin": "digits"},  # not loaded: the benchmark feeds a fixed random batch
    "model": {"plugin": "dcgan", "latent_dim": 32, "filters": 64, "loss": "bce"},
    "train": {"batch_size": 64, "optimizer": {"type": "adam", "learning_rate": 2.0e-4, "beta_1": 0.5}},
}
BATCH = RECIPE["train"]["batch_size"]


class Case:
    def __init__(self, key: str, title: str, shape: tuple[int, int, int], model: dict[str, Any],
                 iters: int, slice_: int, cap: float) -> None:
        self.key, self.title, self.shape, self.model = key, title, shape, model
        self.iters, self.slice, self.cap = iters, slice_, cap  # per round: iterations, per slice, seconds cap


CASES = {
    "8x8": Case("8x8", "8x8 quickstart", (8, 8, 1), {}, iters=40, slice_=5, cap=15.0),
    "28x28": Case("28x28", "28x28 fashion-mnist shape", (28, 28, 1), {"latent_dim": 64, "filters": 64},
                  iters=8, slice_=2, cap=15.0),
}

GANCTL, HAND = "ganctl", "hand-written"
FUSED = "ganctl, {k} steps per call"
TUTORIAL, FRESH = "plain PyTorch", "plain PyTorch (fresh z)"
WARMUP = 5  # untimed iterations of every variant after building (the first ones compile)
NOISY = 0.06  # a paired ratio whose (max - min) / median over rounds exceeds this is flagged


# ============================================================================================
# Child: builds and times the variants of one backend
# ============================================================================================


def _recipe_and_spec(case: str, k: int = 1) -> tuple[Any, Any, Any]:
    from ganctl.api import DataSpec
    from ganctl.plugins import get_host
    from ganctl.recipe.load import validate

    host = get_host()
    raw = json.loads(json.dumps(RECIPE))
    raw["model"].update(CASES[case].model)
    raw["train"]["steps_per_execution"] = k
    return validate(raw, host, source="bench"), DataSpec(*CASES[case].shape), host


def build_child(backend: str, cases: list[str], fused: int) -> tuple[dict[tuple[str, str], Callable[[int], Any]],
                                                                     dict[tuple[str, str], int], dict[str, Any]]:
    """Every variant this process times, keyed by (case, variant), each ``f(step) -> losses``, and
    how many steps each call of it makes (``fused`` for the fused variant, else 1)."""
    from ganctl.sampling import step_latents

    variants: dict[tuple[str, str], Callable[[int], Any]] = {}
    strides: dict[tuple[str, str], int] = {}
    checks: dict[str, Any] = {}
    for case in cases:
        if backend == PLAIN:
            recipe, spec, _ = _recipe_and_spec(case)
            _, batch = fixed_batch(recipe, spec)
            variants[(case, TUTORIAL)], count = plain_torch(recipe, spec, False, batch.images)
            variants[(case, FRESH)], _ = plain_torch(recipe, spec, True, batch.images)
            for step in range(WARMUP):
                variants[(case, TUTORIAL)](step)
                variants[(case, FRESH)](step)
            checks[case] = {"trainable_parameters": count}
            continue
        ours, info = ganctl_variant(backend, lambda case=case: _recipe_and_spec(case))
        hand = HAND_STEPS[backend](*_recipe_and_spec(case))
        images, size, dim, seed = info["images"], info["batch"], info["latent_dim"], info["seed"]
        if info["players"] != ["generator", "discriminator"]:
            raise SystemExit(f"unexpected players {info['players']}")

        def hand_step(step: int, hand: Any = hand, images: Any = images, size: int = size, dim: int = dim,
                      seed: int = seed) -> list[float]:
            draws = step_latents(seed, step, size, dim)  # what Trainer.train_step draws at this step
            z_g = next(draws)
            return hand(images, z_g, next(draws))

        # Warm-up (compiles) doubles as an equivalence check: same weights, batch and latents,
        # so both must give the same losses at every step (up to float reassociation).
        diff = 0.0
        for step in range(WARMUP):
            a, b = ours(step), hand_step(step)
            diff = max(diff, *(abs(x - y) / max(1.0, abs(x)) for x, y in zip(a, b, strict=True)))
        checks[case] = {"max_rel_loss_diff": diff, "jit": info["jit"], "trainable_parameters": info["parameters"]}
        variants[(case, GANCTL)] = ours
        variants[(case, HAND)] = hand_step
        if fused > 1 and backend in ("jax", "tensorflow"):
            name = FUSED.format(k=fused)
            variants[(case, name)], _ = ganctl_variant(backend, lambda case=case: _recipe_and_spec(case, fused), fused)
            strides[(case, name)] = fused
            for step in range(WARMUP):  # compiles the k steps' call
                variants[(case, name)](step * fused)
    return variants, {key: strides.get(key, 1) for key in variants}, checks


def child_main(backend: str, cases: list[str], threads: int | None, fused: int) -> None:
    """Build and warm up, say ready; then run one slice per request until the parent closes the pipe."""

    def build() -> tuple[dict[str, Any], harness.Answer]:
        if backend in ("torch", PLAIN):
            import torch

            if threads:
                torch.set_num_threads(threads)
        if backend != PLAIN:
            from ganctl.engine.backends import activate

            activate(backend)
        began = time.perf_counter()
        variants, strides, checks = build_child(backend, cases, fused)
        names = ["torch"] if backend == PLAIN else ["keras", backend]
        ready = {"variants": [list(k) for k in variants], "checks": checks, "versions": harness.versions(names),
                 "setup_s": time.perf_counter() - began}
        if backend in ("torch", PLAIN):
            import torch

            ready["torch_threads"] = torch.get_num_threads()
        step = 10_000  # past the warm-up steps: fresh latents every iteration, as in training

        def run_slice(request: dict[str, Any]) -> dict[str, Any]:
            nonlocal step
            case, iterations, flip = request["case"], request["iterations"], request["flip"]
            names = [v for c, v in variants if c == case]
            seconds = dict.fromkeys(names, 0.0)
            # A block of iterations per variant, the order flipped every slice (A B, B A, ...): each
            # variant runs as it would in training, with one switch-over per block, and neither is
            # favoured by position.
            for name in names if flip == 0 else names[::-1]:
                fn, stride = variants[(case, name)], strides[(case, name)]
                start = time.perf_counter()
                for i in range(0, iterations, stride):  # the parent makes iterations a multiple of every stride
                    losses = fn(step + i)
                seconds[name] += time.perf_counter() - start
                if not all(math.isfinite(v) for v in losses):
                    raise SystemExit(f"{name} on {case}: non-finite loss {losses}")
            step += iterations
            return {"seconds": seconds, "iterations": iterations}

        return ready, run_slice

    harness.serve(build)


# ============================================================================================
# Parent: start the children, interleave them slice by slice, summarise
# ============================================================================================


class Child(harness.Child):
    """A child process for one backend (and torch thread count)."""

    def __init__(self, backend: str, threads: int | None, cases: list[str], logdir: Path, model: list[str],
                 fused: int) -> None:
        self.backend, self.threads = backend, threads
        name = backend + (f"-{threads}t" if threads else "")
        env = {}
        if backend != PLAIN:
            env["KERAS_BACKEND"] = backend
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", backend, "--cases", *cases,
               "--fused", str(fused)]
        if threads:
            cmd += ["--child-threads", str(threads)]
        for item in model:
            cmd += ["--model", item]
        super().__init__(name, cmd, logdir / f"{name}.log", env)
        self.label = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch", PLAIN: "PyTorch, no Keras"}[backend]
        if "torch_threads" in self.ready:
            n = self.ready["torch_threads"]
            self.label += f" ({n} thread{'s' if n > 1 else ''}{'' if threads else ', default'})"

    def variants(self, case: str) -> list[str]:
        return [v for c, v in self.ready["variants"] if c == case]

    def run(self, case: str, iterations: int, flip: int) -> dict[str, Any]:
        return self.ask({"case": case, "iterations": iterations, "flip": flip})


def run_round(children: list[Child], case: Case, index: int) -> dict[str, Any]:
    """One round of a case: slices across the children until each did ``case.iters`` (or its cap)."""
    seconds = {(ch.name, v): 0.0 for ch in children for v in ch.variants(case.key)}
    done = dict.fromkeys((ch.name for ch in children), 0)
    spent = dict.fromkeys((ch.name for ch in children), 0.0)
    capped: list[str] = []
    active = list(children)
    s = 0
    while active:
        for child in harness.rotated(active, index + s):  # rotate which child goes first
            n = min(case.slice, case.iters - done[child.name])
            result = child.run(case.key, n, (index + s) % 2)
            for variant, t in result["seconds"].items():
                seconds[(child.name, variant)] += t
                spent[child.name] += t
            done[child.name] += n
        s += 1
        for child in list(active):
            if done[child.name] >= case.iters:
                active.remove(child)
            elif spent[child.name] > case.cap:
                active.remove(child)
                capped.append(child.name)
    rates = {f"{name}|{variant}": BATCH * done[name] / t for (name, variant), t in seconds.items()}
    return {"rates": rates, "iterations": done, "capped": capped, "load": os.getloadavg()[0]}


def summarise(children: list[Child], case: Case, rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per variant: median samples/s and spread; paired ratios to hand-written and plain PyTorch."""
    plain = [ch for ch in children if ch.backend == PLAIN]
    refs = {"vs_plain": next((ch for ch in plain if not ch.threads), None),
            "vs_plain_1t": next((ch for ch in plain if ch.threads == 1), None)}
    rows = []
    for child in children:
        for variant in child.variants(case.key):
            rates = [r["rates"][f"{child.name}|{variant}"] for r in rounds]
            row: dict[str, Any] = {"case": case.title, "process": child.name, "backend": child.label,
                                   "variant": variant, "median": statistics.median(rates), "rates": rates}
            if variant == GANCTL:
                row["vs_hand"] = [r["rates"][f"{child.name}|{GANCTL}"] / r["rates"][f"{child.name}|{HAND}"]
                                  for r in rounds]
            if _is_fused(variant):
                row["vs_single"] = [r["rates"][f"{child.name}|{variant}"] / r["rates"][f"{child.name}|{GANCTL}"]
                                    for r in rounds]
            for key, ref in refs.items():
                if ref is not None:
                    row[key] = [r["rates"][f"{child.name}|{variant}"] / r["rates"][f"{ref.name}|{TUTORIAL}"]
                                for r in rounds]
            rows.append(row)
    return rows


def _is_fused(variant: str) -> bool:
    return variant.startswith(GANCTL + ", ")


def _ratio(values: list[float] | None) -> str:
    if not values:
        return ""
    return f"{statistics.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def report(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    m = meta["machine"]
    out = ["## Training throughput", ""]
    out.append(f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['platform']}. Python {m['python']}, "
               + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".")
    out.append(f"Batch {meta['batch']}; rounds: " + ", ".join(f"{k} {v}" for k, v in meta["rounds"].items())
               + f". Load average (1 min) before / after: {meta['load_before']:.2f} / {meta['load_after']:.2f}; "
               f"wall time {meta['wall_s']:.0f} s.")
    out.append("Models (dcgan): " + "; ".join(f"{t}: " + ", ".join(f"{k} {v}" for k, v in m.items())
                                             for t, m in meta["models"].items()) + ".")
    out.append("")
    out.append("samples/s: median over rounds [min, max]; spread = (max - min) / median. Ratios are paired (within each round), "
               "median [min, max] over rounds. 'vs plain PyTorch' divides by the tutorial loop with torch's "
               "default threads; '(1 thread)' by the same loop on one thread.")
    out.append("")
    has_1t = any(r.get("vs_plain_1t") for r in rows)
    head = "| case | backend | variant | samples/s | spread | vs hand-written | vs plain PyTorch |"
    sep = "| --- | --- | --- | ---: | ---: | ---: | ---: |"
    if has_1t:
        head += " vs plain PyTorch (1 thread) |"
        sep += " ---: |"
    out += [head, sep]
    for r in rows:
        line = (f"| {r['case']} | {r['backend']} | {r['variant']} | {r['median']:.0f} "
                f"[{min(r['rates']):.0f}, {max(r['rates']):.0f}] | {100 * harness.spread(r['rates']):.0f} % | "
                f"{_ratio(r.get('vs_hand'))} | "
                f"{_ratio(r.get('vs_plain'))} |")
        if has_1t:
            line += f" {_ratio(r.get('vs_plain_1t'))} |"
        out.append(line)
    out += ["", "Targets:"]
    for case in dict.fromkeys(r["case"] for r in rows):
        ours = [r for r in rows if r["case"] == case and (r["variant"] == GANCTL or _is_fused(r["variant"]))]
        for r in ours:
            if r.get("vs_hand"):
                med = statistics.median(r["vs_hand"])
                out.append(f"- {case}, {r['backend']}: ganctl / hand-written = {med:.3f} "
                           f"(target >= 0.97: {'met' if med >= 0.97 else 'MISSED'})")
            if r.get("vs_single"):
                out.append(f"- {case}, {r['backend']}: {r['variant']} / one step per call = {_ratio(r['vs_single'])}")
        for key, what in (("vs_plain", "plain PyTorch"), ("vs_plain_1t", "plain PyTorch on 1 thread")):
            scored = [r for r in ours if r.get(key)]
            if scored:
                top = max(scored, key=lambda r: statistics.median(r[key]))
                med = statistics.median(top[key])
                out.append(f"- {case}: best ganctl backend vs {what}: {top['backend']} ({top['variant']}), {med:.2f}x "
                           f"(target >= 1.3: {'met' if med >= 1.3 else 'MISSED'})")
                jax = [r for r in scored if r["backend"] == "jax"]  # JAX, the default backend, has its own target
                if jax:
                    best = max(jax, key=lambda r: statistics.median(r[key]))
                    med = statistics.median(best[key])
                    out.append(f"- {case}: ganctl on JAX ({best['variant']}) vs {what}: {med:.2f}x "
                               f"(target >= 1.0: {'met' if med >= 1.0 else 'MISSED'})")
    out.append("")
    noisy = [(r, key) for r in rows if r["variant"] == GANCTL or _is_fused(r["variant"])
             for key in ("vs_hand", "vs_plain", "vs_plain_1t", "vs_single")
             if r.get(key) and len(r[key]) > 1 and harness.spread(r[key]) > NOISY]
    if noisy:
        out.append(f"Noise: these target ratios vary by more than {NOISY:.0%} (max - min over median) across "
                   "rounds (other work on the machine); read their medians, not single rounds:")
        for r, key in noisy:
            out.append(f"- {r['case']}, {r['backend']}, {r['variant']}, {key.replace('_', ' ')}: "
                       f"{100 * harness.spread(r[key]):.0f} %")
    else:
        out.append(f"Noise: every paired ratio stayed within {NOISY:.0%} across rounds.")
    if meta["capped"]:
        out.append("Rounds cut short by the time cap (fewer iterations, same pairing): "
                   + ", ".join(f"{k}: {v}" for k, v in meta["capped"].items()) + ".")
    checks = []
    for name, per_case in meta["checks"].items():
        for case, c in per_case.items():
            if "max_rel_loss_diff" in c:
                checks.append(f"{name} {case}: {c['max_rel_loss_diff']:.1e}")
    out.append("")
    out.append("Same computation check (largest relative difference between ganctl's and the hand-written "
               "step's losses over the warm-up steps, same weights and latents): " + "; ".join(checks) + ".")
    counts: dict[str, set[int]] = {}
    for per in meta["checks"].values():
        for case, c in per.items():
            counts.setdefault(case, set()).add(c["trainable_parameters"])
    for case, found in counts.items():
        if len(found) == 1:
            out.append(f"Trainable parameters, {case}: {found.pop()} in every variant (Keras and plain PyTorch alike).")
        else:
            out.append(f"WARNING: trainable parameters differ for {case}: {sorted(found)}; the plain PyTorch model "
                       "no longer mirrors ganctl's dcgan, so ratios to it are not like for like.")
    return "\n".join(out)


def parent_main(args: argparse.Namespace) -> None:
    cases = [CASES[key] for key in args.cases]
    for case in cases:
        if args.iters:
            case.iters = args.iters
        if args.cap:
            case.cap = args.cap
        if args.quick:
            case.iters, case.cap = max(2, case.iters // 3), case.cap / 2
        case.slice = min(case.slice, case.iters)
        if args.fused > 1:  # the fused variant's calls are whole: k steps each
            case.slice = math.ceil(case.slice / args.fused) * args.fused
            case.iters = math.ceil(case.iters / case.slice) * case.slice
    specs: list[tuple[str, int | None]] = []
    for backend in [*args.backends, *([] if args.no_plain else [PLAIN])]:
        for threads in (args.torch_threads if backend in ("torch", PLAIN) else [0]):
            specs.append((backend, threads or None))
    began = time.perf_counter()
    load_before = os.getloadavg()[0]
    children: list[Child] = []
    rows: list[dict[str, Any]] = []
    raw: dict[str, list[dict[str, Any]]] = {}
    capped: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="ganctl-bench-") as logdir:
        try:
            for backend, threads in specs:
                children.append(harness.start(
                    f"{backend}{f' ({threads} thread)' if threads else ''}",
                    lambda b=backend, t=threads: Child(b, t, [c.key for c in cases], Path(logdir), args.model,
                                                       args.fused)))
            for case in cases:
                rounds = []
                n_rounds = args.rounds or (3 if args.quick else {"8x8": 9, "28x28": 7}[case.key])
                for index in range(n_rounds):
                    rounds.append(run_round(children, case, index))
                    for name in rounds[-1]["capped"]:
                        capped[f"{case.title} / {name}"] = capped.get(f"{case.title} / {name}", 0) + 1
                    print(f"{case.title}: round {index + 1}/{n_rounds} "
                          f"({time.perf_counter() - began:.0f} s)", file=sys.stderr, flush=True)
                raw[case.title] = rounds
                rows += summarise(children, case, rounds)
        finally:
            for child in children:
                child.close()
    versions: dict[str, str] = {}
    for child in children:
        versions.update(child.ready["versions"])
    models = {c.title: {k: v for k, v in _recipe_and_spec(c.key)[0].model.params.model_dump().items()
                        if k in ("latent_dim", "filters", "upsampling", "batchnorm", "loss", "conditional")}
              for c in cases}
    meta = {"batch": BATCH, "machine": harness.machine(), "versions": versions, "models": models,
            "rounds": {title: len(r) for title, r in raw.items()},
            "iterations_per_round": {c.title: c.iters for c in cases},
            "load_before": load_before, "load_after": os.getloadavg()[0], "wall_s": time.perf_counter() - began,
            "capped": capped, "checks": {ch.name: ch.ready["checks"] for ch in children}}
    print(report(rows, meta))
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows, "rounds": raw}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=None,
                        help="default: 8x8 and 28x28 (8x8 only with --quick)")
    parser.add_argument("--rounds", type=int, help="rounds per case (default: 9 for 8x8, 7 for 28x28; 3 with --quick)")
    parser.add_argument("--iters", type=int, help="iterations per variant per round (default: 40 for 8x8, 8 for 28x28)")
    parser.add_argument("--cap", type=float, help="seconds a child may spend per round before it stops early (default 15)")
    parser.add_argument("--torch-threads", type=int, nargs="+", default=None,
                        help="torch thread counts to run, 0 = torch's default (default: 0 1; 0 with --quick)")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain PyTorch loop")
    parser.add_argument("--quick", action="store_true", help="smoke run: 8x8 only, 3 short rounds")
    parser.add_argument("--model", action="append", default=[], metavar="KEY=VALUE",
                        help="override a dcgan parameter in both cases, e.g. --model upsampling=transpose")
    parser.add_argument("--fused", type=int, default=4, metavar="K",
                        help="also time ganctl with K steps per call on JAX and TensorFlow (default 4; 0: not)")
    parser.add_argument("--json", help="also write every number, round by round, to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for item in args.model:
        import yaml

        key, _, value = item.partition("=")
        RECIPE["model"][key.strip()] = yaml.safe_load(value)
    if args.child:
        child_main(args.child, args.cases, args.child_threads, args.fused)
        return
    if args.cases is None:
        args.cases = ["8x8"] if args.quick else list(CASES)
    if args.torch_threads is None:
        args.torch_threads = [0] if args.quick else [0, 1]
    parent_main(args)


if __name__ == "__main__":
    main()
