"""The command line: one module per command (``train``, ``launch``, ``generate``, ``export``, ``evaluate``,
``compare``, ``report``, ``bench``, ``plugins``, ``doctor``) or command group (``recipe``,
``data``). Each defines its Typer options, turns user errors into messages (``console.guarded``)
and calls the layers below; none holds logic another command needs. ``ganctl/cli.py`` joins them.
"""
