"""Names S3 REST requests after the S3 API operation they are.

S3 carries no operation name on the wire: it is implied by the method, whether
the path names a bucket or an object, and the subresource query key
(`PUT /bucket?policy` is PutBucketPolicy). Only path-style addressing is read,
which is what SDKs use against a custom endpoint such as this emulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Bucket subresource key -> the noun in its operation names, by method.
_BUCKET_SUBRESOURCES: dict[str, dict[str, str]] = {
    "policy": {"GET": "GetBucketPolicy", "PUT": "PutBucketPolicy", "DELETE": "DeleteBucketPolicy"},
    "policyStatus": {"GET": "GetBucketPolicyStatus"},
    "versioning": {"GET": "GetBucketVersioning", "PUT": "PutBucketVersioning"},
    "encryption": {
        "GET": "GetBucketEncryption",
        "PUT": "PutBucketEncryption",
        "DELETE": "DeleteBucketEncryption",
    },
    "publicAccessBlock": {
        "GET": "GetPublicAccessBlock",
        "PUT": "PutPublicAccessBlock",
        "DELETE": "DeletePublicAccessBlock",
    },
    "ownershipControls": {
        "GET": "GetBucketOwnershipControls",
        "PUT": "PutBucketOwnershipControls",
        "DELETE": "DeleteBucketOwnershipControls",
    },
    "lifecycle": {
        "GET": "GetBucketLifecycleConfiguration",
        "PUT": "PutBucketLifecycleConfiguration",
        "DELETE": "DeleteBucketLifecycle",
    },
    "tagging": {"GET": "GetBucketTagging", "PUT": "PutBucketTagging", "DELETE": "DeleteBucketTagging"},
    "acl": {"GET": "GetBucketAcl", "PUT": "PutBucketAcl"},
    "cors": {"GET": "GetBucketCors", "PUT": "PutBucketCors", "DELETE": "DeleteBucketCors"},
    "logging": {"GET": "GetBucketLogging", "PUT": "PutBucketLogging"},
    "notification": {
        "GET": "GetBucketNotificationConfiguration",
        "PUT": "PutBucketNotificationConfiguration",
    },
    "location": {"GET": "GetBucketLocation"},
    "replication": {
        "GET": "GetBucketReplication",
        "PUT": "PutBucketReplication",
        "DELETE": "DeleteBucketReplication",
    },
    "website": {"GET": "GetBucketWebsite", "PUT": "PutBucketWebsite", "DELETE": "DeleteBucketWebsite"},
    "object-lock": {"GET": "GetObjectLockConfiguration", "PUT": "PutObjectLockConfiguration"},
    "accelerate": {"GET": "GetBucketAccelerateConfiguration", "PUT": "PutBucketAccelerateConfiguration"},
    "requestPayment": {"GET": "GetBucketRequestPayment", "PUT": "PutBucketRequestPayment"},
    "versions": {"GET": "ListObjectVersions"},
    "uploads": {"GET": "ListMultipartUploads"},
    "delete": {"POST": "DeleteObjects"},
}

_OBJECT_SUBRESOURCES: dict[str, dict[str, str]] = {
    "tagging": {"GET": "GetObjectTagging", "PUT": "PutObjectTagging", "DELETE": "DeleteObjectTagging"},
    "acl": {"GET": "GetObjectAcl", "PUT": "PutObjectAcl"},
    "retention": {"GET": "GetObjectRetention", "PUT": "PutObjectRetention"},
    "legal-hold": {"GET": "GetObjectLegalHold", "PUT": "PutObjectLegalHold"},
    "attributes": {"GET": "GetObjectAttributes"},
    "uploads": {"POST": "CreateMultipartUpload"},
    "restore": {"POST": "RestoreObject"},
}

_BUCKET_PLAIN = {
    "PUT": "CreateBucket",
    "HEAD": "HeadBucket",
    "DELETE": "DeleteBucket",
    "GET": "ListObjects",
}

_OBJECT_PLAIN = {
    "PUT": "PutObject",
    "HEAD": "HeadObject",
    "DELETE": "DeleteObject",
    "GET": "GetObject",
}


def operation_name(
    method: str, path: str, query: Mapping[str, Any], headers: Mapping[str, str]
) -> str:
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets" if method == "GET" else f"{method} /"
    if key:
        return _object_operation(method, query, headers)
    return _bucket_operation(method, query)


def _bucket_operation(method: str, query: Mapping[str, Any]) -> str:
    for subresource, names in _BUCKET_SUBRESOURCES.items():
        if subresource in query and method in names:
            return names[method]
    if method == "GET" and query.get("list-type") == ["2"]:
        return "ListObjectsV2"
    return _BUCKET_PLAIN.get(method, f"{method} Bucket")


def _object_operation(method: str, query: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    for subresource, names in _OBJECT_SUBRESOURCES.items():
        if subresource in query and method in names:
            return names[method]
    if "uploadId" in query:
        return {
            "PUT": "UploadPart",
            "POST": "CompleteMultipartUpload",
            "DELETE": "AbortMultipartUpload",
            "GET": "ListParts",
        }.get(method, f"{method} Object")
    if method == "PUT" and "x-amz-copy-source" in headers:
        return "CopyObject"
    return _OBJECT_PLAIN.get(method, f"{method} Object")
