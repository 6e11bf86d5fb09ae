"""Running exported generators with onnxruntime, without Keras or a deep-learning backend.

- ``generator.py``: ``Generator``: open a ``.onnx`` generator (or a run directory's export), sample
  it with ganctl's latents and labels, or run it on your own ``z``.
- ``contract.py``: the ganctl ONNX contract: format, inputs and outputs, ``ganctl.*`` metadata
  (``json_field``), foreign models, and finding the model a command was given.
- ``providers.py``: execution providers: the ``--provider`` choices, ``probe_provider`` (can the
  CUDA or TensorRT provider run here, and if not, why), TensorRT's engine cache.
- ``nvidia.py``: the NVIDIA driver and the CUDA, cuDNN and TensorRT libraries, probed with ctypes.
- ``elf.py``: the shared libraries an ELF library links against (DT_NEEDED), read from the file.
- ``runtime.py``: the installed onnxruntime (folder, package, version, CUDA build), without
  importing it.
- ``topology.py``: CPU topology: the physical cores this process may use (onnxruntime's threads).

Importing any of them imports only NumPy; onnxruntime is imported when a model is opened.
"""
