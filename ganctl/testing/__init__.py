"""The public test kit for plugin authors (``ganctl.testing``), versioned with ``ganctl.api``.

Modules: ``host`` (an isolated plugin host: the built-ins plus the plugin under test; the
``CheckFailed`` error of every check), ``data`` (small datasets), ``runs`` (train a recipe for a
few steps and read back the run), one module per contract check (``models``, ``datasets``,
``metrics``, ``extractors``, ``exporters``), ``child`` (what ``check_model`` runs once per
backend, in its own process) and ``pytest_plugin`` (the fixtures, loaded through the
``pytest11`` entry point).
"""
