"""Variables whose values live in Parameter Store and Secrets Manager,
resolved with the project role's session before the first phase, as
CodeBuild resolves them.

A failure fails DOWNLOAD_SOURCE with CodeBuild's status codes: `Decrypted
Variables Error` for Parameter Store, `Secrets Manager Error` for Secrets
Manager, the message being the service's error (`AccessDeniedException:
User: ... is not authorized to perform: secretsmanager:GetSecretValue ...`).
"""

from __future__ import annotations

import json
from typing import Any

PARAMETER_STORE_ERROR = "Decrypted Variables Error"
SECRETS_MANAGER_ERROR = "Secrets Manager Error"


class ResolveError(Exception):
    def __init__(self, status_code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def parameters(ssm: Any, names: dict[str, str]) -> dict[str, str]:
    """Variable name to the value of the parameter it names."""
    if not names:
        return {}
    wanted = sorted(set(names.values()))
    try:
        answer = ssm.get_parameters(Names=wanted, WithDecryption=True)
    except Exception as error:  # botocore's ClientError and connection errors alike
        raise ResolveError(PARAMETER_STORE_ERROR, _describe(error)) from error
    if answer.get("InvalidParameters"):
        missing = answer["InvalidParameters"][0]
        raise ResolveError(PARAMETER_STORE_ERROR, f"parameter does not exist: {missing}")
    found: dict[str, str] = {}
    for parameter in answer["Parameters"]:
        found[parameter["Name"]] = parameter["Value"]
        found.setdefault(parameter.get("ARN", ""), parameter["Value"])
    return {variable: found[name] for variable, name in names.items()}


def secrets(client: Any, references: dict[str, str]) -> dict[str, str]:
    """Variable name to the value a `secret-id:json-key:version-stage:
    version-id` reference names (the secret id may be a full ARN)."""
    values = {}
    for variable, reference in references.items():
        secret_id, json_key, stage, version = split_reference(reference)
        request: dict[str, str] = {"SecretId": secret_id}
        if stage:
            request["VersionStage"] = stage
        if version:
            request["VersionId"] = version
        try:
            answer = client.get_secret_value(**request)
        except Exception as error:  # botocore's ClientError and connection errors alike
            raise ResolveError(SECRETS_MANAGER_ERROR, _describe(error)) from error
        text = answer.get("SecretString")
        if text is None:
            raise ResolveError(SECRETS_MANAGER_ERROR, f"secret {secret_id} holds binary data, not a string")
        values[variable] = _json_key(text, json_key, secret_id) if json_key else text
    return values


def split_reference(reference: str) -> tuple[str, str, str, str]:
    parts = reference.split(":")
    # An ARN is seven colon-separated fields: arn:aws:secretsmanager:R:A:secret:name
    head = 7 if reference.startswith("arn:") else 1
    secret_id = ":".join(parts[:head])
    rest = parts[head:] + ["", "", ""]
    return secret_id, rest[0], rest[1], rest[2]


def _json_key(text: str, key: str, secret_id: str) -> str:
    try:
        document = json.loads(text)
    except ValueError as error:
        message = f"secret {secret_id} is not JSON, so it has no key {key}"
        raise ResolveError(SECRETS_MANAGER_ERROR, message) from error
    if not isinstance(document, dict) or key not in document:
        raise ResolveError(SECRETS_MANAGER_ERROR, f"secret {secret_id} has no JSON key {key}")
    value = document[key]
    return value if isinstance(value, str) else json.dumps(value)


def _describe(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        return f"{response['Error'].get('Code')}: {response['Error'].get('Message')}"
    return str(error)
