"""Shared plumbing for operations of AWS JSON-protocol services we handle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Response

from .validation import error_status, service_model, validate
from .wire import AwsError, AwsRequest, json_error, json_response

JsonOperation = Callable[[AwsRequest, dict[str, Any]], dict[str, Any]]
Handler = Callable[[AwsRequest, Any], Response]


def json_operation(model_name: str, version: str = "1.1") -> Callable[[JsonOperation], Handler]:
    """Wrap `fn(request, params) -> output` as a handler that validates the
    input against the service model and renders AWS-shaped errors."""

    def wrap(fn: JsonOperation) -> Handler:
        def handler(request: AwsRequest, forward: Any) -> Response:
            model = service_model(model_name)
            try:
                params = request.json
                if request.operation in model.operation_names:
                    validate(model, request.operation, params)
                return json_response(fn(request, params), version=version)
            except AwsError as error:
                error.status = error_status(model, error.code, error.status)
                return json_error(error, version=version)

        handler.__name__ = fn.__name__
        return handler

    return wrap


def without_nulls(value: dict[str, Any]) -> dict[str, Any]:
    """AWS omits unset members rather than sending null."""
    return {key: item for key, item in value.items() if item is not None}
