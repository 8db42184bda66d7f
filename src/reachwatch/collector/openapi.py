"""How routes declare their request bodies for OpenAPI: the routes read the raw request (orjson,
pydantic at the edge), so their body schemas are given by hand, inlined, for clients and fuzzers."""

from __future__ import annotations

from typing import Any


def error_answers(*answers: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """A route's error answers for OpenAPI, ``(status, what it means)`` each: a JSON object
    (``{"error": ...}``, :mod:`~reachwatch.collector.error_handlers`)."""
    return {
        code: {"description": text, "content": {"application/json": {"schema": {"type": "object"}}}}
        for code, text in answers
    }


def json_body(model: Any) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` (a pydantic model) as the route's JSON body."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema(model.model_json_schema())}},
        }
    }


def inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` written in place of their ``$ref`` s: embedded in the OpenAPI
    document, ``#/$defs/...`` would point at the document's root, where nothing is (clients and
    fuzzers then know nothing of the body). Our request models are not recursive."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref[len("#/$defs/") :]])
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    out: dict[str, Any] = walk(schema)
    return out
