"""
drf-spectacular's component schemas (OpenAPI 3.0's dialect) as plain JSON Schema (draft
07, which AsyncAPI's schemas extend and the TypeScript generator reads).

    schema = json_schema({"type": "string", "nullable": True})   # {"type": ["string", "null"]}
"""

from __future__ import annotations

from typing import Any

__all__ = ["json_schema", "ref_name"]

_ONE = ("items", "additionalProperties", "not", "propertyNames", "contains", "if", "then", "else")
_MANY = ("allOf", "oneOf", "anyOf")
_MAPS = ("properties", "patternProperties", "definitions")
_REF_PREFIX = "#/components/schemas/"


def ref_name(schema: Any) -> str | None:
    """The component a ``{"$ref": "#/components/schemas/<name>"}`` names, else None."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            return ref.removeprefix(_REF_PREFIX)
    return None


def json_schema(schema: Any) -> Any:
    """A copy of an OpenAPI 3.0 schema in JSON Schema: ``nullable`` becomes a ``"null"``
    type, ``example`` ``examples``, ``oneOf`` ``anyOf``, boolean ``exclusiveMinimum``/``Maximum`` numbers;
    OpenAPI's ``discriminator`` object and drf-spectacular's ``x-spec-enum-id`` go."""
    if not isinstance(schema, dict):
        return schema
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _ONE and isinstance(value, dict):
            result[key] = json_schema(value)
        elif key in _MANY and isinstance(value, list):
            # oneOf is anyOf here: drf-spectacular's alternatives may overlap where a
            # validator does not assert "format" (an email, or ""), and oneOf would then
            # refuse a value that matches both.
            result["anyOf" if key == "oneOf" else key] = [json_schema(item) for item in value]
        elif key in _MAPS and isinstance(value, dict):
            result[key] = {name: json_schema(item) for name, item in value.items()}
        elif key in {"nullable", "discriminator", "x-spec-enum-id"}:
            continue
        elif key == "example":
            result["examples"] = [value]
        else:
            result[key] = value
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        flag = result.get(bound)
        if isinstance(flag, bool):
            del result[bound]
            if flag and limit in result:
                result[bound] = result.pop(limit)
    if schema.get("nullable") is True:
        result = _nullable(result)
    return result


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str) and "$ref" not in schema and not any(key in schema for key in _MANY):
        schema = {**schema, "type": [kind, "null"]}
        if isinstance(schema.get("enum"), list) and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
        return schema
    if isinstance(kind, list):
        return {**schema, "type": [*kind, "null"]} if "null" not in kind else schema
    # A $ref or a combination: "this, or null".
    return {"anyOf": [schema, {"type": "null"}]}
