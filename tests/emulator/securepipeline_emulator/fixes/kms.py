"""KMS: GetKeyPolicy and PutKeyPolicy without a PolicyName.

PolicyName became optional (it defaults to "default", the only policy a key
has); moto still treats a missing name as an unknown policy and answers
NotFoundException. We fill in the default before moto sees the request.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from ..wire import AwsRequest


def default_policy_name(request: AwsRequest, forward: Any) -> Response:
    params = request.json
    if not params.get("PolicyName"):
        request.replace_json({**params, "PolicyName": "default"})
    return forward(request)


HANDLERS = {
    ("kms", "GetKeyPolicy"): default_policy_name,
    ("kms", "PutKeyPolicy"): default_policy_name,
}
