"""Recipes: the YAML file that declares a run, its schema, and how it is validated.

- ``yamlio.py``: strict, safe YAML reading with a position for every key.
- ``schema.py``: the core schema (pydantic): top-level keys, ``train``, optimizers, plugin sections.
- ``load.py``: reading and two-phase validation into a ``Recipe`` of validated plugin ``Section`` objects.
- ``overrides.py``: ``--set KEY.PATH=VALUE`` on parsed recipe data, and the option's help.
- ``messages.py``: pydantic errors worded as ``FILE:LINE:COL: dotted.key: problem. Fix.``
- ``jsonschema.py``: the JSON Schema of recipes, with every installed plugin's parameters.
- ``pruning.py``: ``train.prune``'s keys and the checks that need only the recipe.
- ``precision.py``: the values of ``train.precision`` and the message for any other.
"""
