"""The torch backend: its engine (steps, gradients, compilation, devices) in engine.py."""
