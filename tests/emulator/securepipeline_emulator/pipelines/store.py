"""Artifact stores: where a region's artifacts live and how they are written.

An artifact is one zip object in the artifact bucket of the region that
uses it, at `<pipeline>/<artifact>/<random>` with the pipeline and artifact
names cut to 20 characters, as CodePipeline names them. CodePipeline writes
and reads them with the pipeline role's credentials and encrypts with the
store's key (SSE-KMS, the key named on every put), so the role's grants,
the bucket policy and the key policy all decide.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ..loopback import Loopback, SessionCredentials
from ..wire import AwsError
from .model import Artifact

FOLDER_CHARS = 20
_KEY_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Store:
    region: str
    bucket: str
    key_id: str | None  # the store's KMS key; None for S3-managed encryption


def store_for(declaration: dict[str, Any], region: str) -> Store:
    """The artifact store of `region`: the only store of a one-region
    pipeline (`artifactStore`), else that region's in `artifactStores`."""
    stores = declaration.get("artifactStores")
    store = stores.get(region) if stores else declaration.get("artifactStore")
    if not store:
        raise AwsError("InvalidStructureException", f"the pipeline has no artifact store in {region}")
    return Store(region, store["location"], (store.get("encryptionKey") or {}).get("id"))


def new_key(pipeline_name: str, artifact_name: str) -> str:
    random = "".join(secrets.choice(_KEY_ALPHABET) for _ in range(7))
    return f"{pipeline_name[:FOLDER_CHARS]}/{artifact_name[:FOLDER_CHARS]}/{random}"


class Objects:
    """Reading and writing artifact objects as the pipeline role."""

    def __init__(self, loopback: Loopback) -> None:
        self.loopback = loopback

    def put(self, credentials: SessionCredentials, store: Store, key: str, body: bytes) -> None:
        extra: dict[str, str] = {}
        if store.key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": store.key_id}
        s3 = self.loopback.client("s3", store.region, credentials)
        try:
            s3.put_object(Bucket=store.bucket, Key=key, Body=body, **extra)
        except ClientError as error:
            raise as_aws_error(error) from error

    def get(self, credentials: SessionCredentials, artifact: Artifact) -> bytes:
        s3 = self.loopback.client("s3", artifact.region, credentials)
        try:
            return s3.get_object(Bucket=artifact.bucket, Key=artifact.key)["Body"].read()
        except ClientError as error:
            raise as_aws_error(error) from error


def as_aws_error(error: ClientError) -> AwsError:
    """A failed call the service made, as the error its action reports."""
    details = error.response.get("Error", {})
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
    return AwsError(details.get("Code", "Unknown"), details.get("Message", str(error)), status)
