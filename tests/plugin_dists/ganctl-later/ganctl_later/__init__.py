"""A plugin whose distribution depends on `ganctl>=99`, installed with --no-deps: ganctl refuses it
before importing it (were it imported, this module would say so)."""

raise ImportError("ganctl_later was imported: the dependency check should have refused it first")
