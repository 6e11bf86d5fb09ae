"""The JSON Schema of recipes (``ganctl recipe schema``), for editors that complete and check YAML."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, create_model

from ganctl.plugins import SINGULAR, PluginHost
from ganctl.recipe.schema import METRIC_CORE, MetricRef, PluginRef, RecipeModel


def json_schema(host: PluginHost) -> dict[str, Any]:
    """A JSON Schema of recipes: the core keys plus every installed plugin's parameters."""

    def union(kind: str, base: type[BaseModel]) -> Any:
        variants = []
        for name in host.names(kind):
            params = host.get(kind, name).params_model
            fields: dict[str, Any] = {"plugin": (Literal[name], Field(description=f"{SINGULAR[kind]} plugin"))}
            if base is MetricRef:
                for key in METRIC_CORE:
                    fields[key] = (MetricRef.model_fields[key].annotation, MetricRef.model_fields[key])
            model = create_model(f"{kind}.{name}", __base__=params, **fields)
            model.__doc__ = host.get(kind, name).description or None
            variants.append(model)
        if not variants:
            return base
        if len(variants) == 1:
            return variants[0]
        return Annotated[Union[tuple(variants)], Field(discriminator="plugin")]  # noqa: UP007

    def or_name(kind: str, sections: Any) -> Any:
        names = host.names(kind)
        return Union[Literal[tuple(names)], sections] if names else Union[str, sections]  # noqa: UP007

    export_item = or_name("exporters", union("exporters", PluginRef))
    metric_item = or_name("metrics", union("metrics", MetricRef))
    schema_model = create_model(
        "Recipe",
        __base__=RecipeModel,
        data=(union("datasets", PluginRef), RecipeModel.model_fields["data"]),
        model=(union("models", PluginRef), RecipeModel.model_fields["model"]),
        metrics=(list[metric_item], RecipeModel.model_fields["metrics"]),
        export=(list[export_item], RecipeModel.model_fields["export"]),
    )
    schema = schema_model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ganctl recipe"
    return schema
