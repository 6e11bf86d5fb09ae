"""The tensorflow backend: its engine (steps, gradients, compilation, devices) in engine.py; fused.py
runs k steps in one compiled call (``train.steps_per_execution``)."""
