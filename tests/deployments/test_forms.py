"""The run forms staff open in the Prefect UI speak French, field by field."""

from __future__ import annotations

from typing import Any

import pytest

from deployments.definitions import build_deployments

DEPLOYMENTS = {deployment.name: deployment for deployment in build_deployments()}
ENGLISH = ("by default", "the ", " which ", "one mailing")


def _models(name: str) -> dict[str, Any]:
    schema = DEPLOYMENTS[name]._parameter_openapi_schema
    document = schema.model_dump() if hasattr(schema, "model_dump") else dict(schema)
    return document.get("definitions", {})


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_every_field_has_a_french_title_and_a_description(name: str) -> None:
    for model_name, model in _models(name).items():
        if "properties" not in model:
            continue  # an enum
        description = model.get("description", "")
        assert description and not any(w in description.lower() for w in ENGLISH), model_name
        for field, spec in model["properties"].items():
            generated = field.replace("_", " ").title()
            assert spec.get("title") and spec["title"] != generated, f"{model_name}.{field}"
            assert spec.get("description"), f"{model_name}.{field}"


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_no_optional_text_shows_a_type_switch(name: str) -> None:
    for model_name, model in _models(name).items():
        for field, spec in model.get("properties", {}).items():
            # Dates and instants (a "format") have their own picker; plain text can stay empty.
            kinds = [(o.get("type"), o.get("format")) for o in spec.get("anyOf", [])]
            assert kinds != [("string", None), ("null", None)], f"{model_name}.{field}"
