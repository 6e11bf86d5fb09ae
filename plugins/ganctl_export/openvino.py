"""The ``openvino`` exporter: OpenVINO IR (``generator.xml`` + ``generator.bin`` in a folder)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ganctl import api

from ._quiet import quiet_conversion

STEM = "generator"


class OpenVinoExporter(api.Exporter):
    """OpenVINO IR (a folder with generator.xml and .bin) for Intel CPUs, GPUs and NPUs."""

    suffix = ""

    class Params(api.Params):
        pass

    def unavailable(self, backend: str) -> str | None:
        if backend == "jax":
            return ("OpenVINO cannot convert what Keras makes of a JAX model (an XlaCallModule op); "
                    "export with --backend torch or --backend tensorflow (the weights are portable)")
        if importlib.util.find_spec("openvino") is None:
            return "needs OpenVINO; install with: pip install 'ganctl[openvino]'"
        return None

    def export(self, source: api.ExportSource, path: Path) -> None:
        import openvino as ov

        path.mkdir()
        raw = path / "keras.xml"
        with quiet_conversion("OpenVINO export"):
            source.generator.export(str(raw), format="openvino", verbose=False)
            # some converters (PyTorch's tracer) fix the batch size: free it again. The weights of
            # `raw` are memory-mapped, so the result goes to another file before `raw` is removed.
            model = ov.Core().read_model(str(raw))
            model.reshape({port: ov.PartialShape([-1, *port.get_partial_shape()[1:]]) for port in model.inputs})
            for key, value in source.metadata.items():
                model.set_rt_info(value, ["ganctl", key.removeprefix("ganctl.")])
            ov.save_model(model, str(path / f"{STEM}.xml"), compress_to_fp16=False)
            del model
        raw.unlink()
        raw.with_suffix(".bin").unlink(missing_ok=True)

    def load(self, path: Path) -> api.Runner:
        import openvino as ov

        # float32 as exported: on CPUs with bfloat16 instructions (AVX512-BF16, AMX) OpenVINO's CPU
        # plugin otherwise computes in bfloat16 by default, about 1e-2 away from Keras.
        compiled = ov.Core().compile_model(str(path / f"{STEM}.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        types = [port.get_element_type().to_dtype() for port in compiled.inputs]

        def run(z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
            values = [z] if len(types) == 1 else [z, labels]
            feed = {i: np.asarray(v).astype(t) for i, (v, t) in enumerate(zip(values, types, strict=True))}
            return np.asarray(compiled(feed)[compiled.outputs[0]])

        return run
