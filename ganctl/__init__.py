"""ganctl: train generative models declaratively on any Keras 3 backend, and ship them as ONNX."""

__version__ = "0.1.0"
