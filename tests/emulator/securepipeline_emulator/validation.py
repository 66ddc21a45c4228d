"""Input validation driven by botocore's copy of the AWS service models.

AWS rejects input that breaks a model constraint (required member, length,
range, enum, pattern) with a `ValidationException` whose message lists every
violation, e.g.:

    1 validation error detected: Value 'x...' at 'connectionName' failed to
    satisfy constraint: Member must have length less than or equal to 32

The provider's error handling is tested against that shape, so we produce it
from the same models the SDKs are generated from.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.model import ServiceModel, Shape

from .wire import AwsError


@lru_cache(maxsize=None)
def service_model(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


def error_status(model: ServiceModel, code: str, default: int = 400) -> int:
    """The HTTP status the model gives an error shape (AWS's `httpError`)."""
    try:
        shape = model.shape_for(code)
    except Exception:
        return default
    return shape.metadata.get("error", {}).get("httpStatusCode", default)


def validate(model: ServiceModel, operation: str, params: dict[str, Any]) -> None:
    shape = model.operation_model(operation).input_shape
    problems: list[str] = []
    if shape is not None:
        _check_structure(shape, params, "", problems)
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise AwsError(
            "ValidationException",
            f"{count} validation {noun} detected: " + "; ".join(problems),
        )


def _member_path(prefix: str, name: str) -> str:
    # AWS reports members in lowerCamelCase, joined with dots.
    camel = name[:1].lower() + name[1:]
    return f"{prefix}.{camel}" if prefix else camel


def _check_structure(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        raise AwsError("SerializationException", f"Expected an object at '{path or 'input'}'")
    for name in shape.required_members:
        if value.get(name) is None:
            problems.append(
                f"Value null at '{_member_path(path, name)}' failed to satisfy constraint: "
                "Member must not be null"
            )
    for name, member in shape.members.items():
        if value.get(name) is not None:
            _check_value(member, value[name], _member_path(path, name), problems)


def _check_value(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        _check_structure(shape, value, path, problems)
    elif kind == "list":
        _check_list(shape, value, path, problems)
    elif kind == "map":
        _check_map(shape, value, path, problems)
    elif kind == "string":
        _check_string(shape, value, path, problems)
    elif kind in ("integer", "long"):
        _check_number(shape, value, path, problems)


def _check_list(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, list):
        raise AwsError("SerializationException", f"Expected a list at '{path}'")
    _check_length(shape, len(value), value, path, problems)
    for index, item in enumerate(value, start=1):
        if item is not None:
            _check_value(shape.member, item, f"{path}.{index}.member", problems)


def _check_map(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        raise AwsError("SerializationException", f"Expected an object at '{path}'")
    _check_length(shape, len(value), value, path, problems)
    for key, item in value.items():
        _check_value(shape.key, key, f"{path}.key", problems)
        if item is not None:
            _check_value(shape.value, item, f"{path}.{key}", problems)


def _check_string(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, str):
        raise AwsError("SerializationException", f"Expected a string at '{path}'")
    _check_length(shape, len(value), value, path, problems)
    if shape.enum and value not in shape.enum:
        problems.append(
            f"{_describe(value)} at '{path}' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"
        )
    pattern = shape.metadata.get("pattern")
    if pattern and not _matches(pattern, value):
        problems.append(
            f"{_describe(value)} at '{path}' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {pattern}"
        )


def _matches(pattern: str, value: str) -> bool:
    # Model patterns are Java regexes matched against the whole value; the few
    # Java-only constructs Python cannot compile are not enforced.
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return True


def _check_number(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AwsError("SerializationException", f"Expected an integer at '{path}'")
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        problems.append(
            f"Value '{value}' at '{path}' failed to satisfy constraint: "
            f"Member must have value greater than or equal to {low}"
        )
    if high is not None and value > high:
        problems.append(
            f"Value '{value}' at '{path}' failed to satisfy constraint: "
            f"Member must have value less than or equal to {high}"
        )


def _check_length(shape: Shape, length: int, value: Any, path: str, problems: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and length < low:
        problems.append(
            f"{_describe(value)} at '{path}' failed to satisfy constraint: "
            f"Member must have length greater than or equal to {low}"
        )
    if high is not None and length > high:
        problems.append(
            f"{_describe(value)} at '{path}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {high}"
        )


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"Value '{value}'"
    return "Value"  # AWS does not echo lists or maps back
