"""The `ganctl sample-info` command: Summarise generated samples: count, shape, value range, per label."""

from pathlib import Path

import numpy as np
import typer

from ganctl import api

GANCTL_API = "1.7"  # register_commands is API 1.7


def summary(images: np.ndarray, labels) -> dict:
    """What the command prints: how many samples, their shape, value range and mean, and how many
    there are of each label (for a conditional model's samples)."""
    out = {"samples": int(images.shape[0]), "shape": list(images.shape[1:]),
           "min": float(images.min()), "max": float(images.max()), "mean": float(images.mean())}
    if labels is not None:
        values, counts = np.unique(labels, return_counts=True)
        out["per_label"] = {int(v): int(c) for v, c in zip(values, counts, strict=True)}
    return out


@api.hookimpl
def register_commands(cli):
    @cli.command("sample-info")
    def sample_info(
        path: Path = typer.Argument(..., help="Samples written by `ganctl generate RUN -n N --out FILE.npz`."),
    ) -> None:
        """Summarise generated samples: count, shape, value range, per label."""  # the first line is the command's line in `ganctl --help`
        try:
            with np.load(path) as data:
                images = np.asarray(data["images"])
                labels = np.asarray(data["labels"]) if "labels" in data.files else None
        except (OSError, ValueError, KeyError) as exc:
            raise api.ConfigError(f"{path} is not an .npz of samples ({type(exc).__name__}: {exc}). Fix: give the "
                                  "file `ganctl generate RUN -n N --out FILE.npz` wrote.") from None
        if images.ndim < 2 or images.shape[0] == 0:
            raise api.ConfigError(f"{path} holds no samples (images of shape {list(images.shape)}). Fix: generate "
                                  "some with `ganctl generate RUN -n 64 --out FILE.npz`.")
        for key, value in summary(images, labels).items():
            typer.echo(f"{key}: {value}")
