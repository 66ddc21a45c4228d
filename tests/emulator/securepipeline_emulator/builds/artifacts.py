"""Build input and output artifacts: zip objects in an S3 artifact store.

CodePipeline hands a build its input artifacts as zip objects and takes its
output artifacts the same way. The build reads and writes them with the
project's role (so the role needs s3:GetObject/PutObject on exactly those
keys, and kms:Decrypt/GenerateDataKey on the store's key), and writes each
output encrypted with the pipeline's artifact key.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .buildspec import ArtifactSpec


@dataclass(frozen=True)
class ArtifactLocation:
    """One pipeline artifact: its name and where its zip is stored."""

    name: str  # the pipeline's artifact name, e.g. "SourceOutput"
    bucket: str
    key: str  # object key of the zip in the artifact store


class ArtifactError(Exception):
    """An artifact could not be read or written; the message says why."""


def download(s3: Any, location: ArtifactLocation, into: Path) -> None:
    """Fetch the zip at `location` and extract it into `into`."""
    try:
        body = s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
    except Exception as error:  # botocore's ClientError and connection errors alike
        raise ArtifactError(f"reading s3://{location.bucket}/{location.key}: {error}") from error
    into.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            _extract(archive, into)
    except zipfile.BadZipFile as error:
        raise ArtifactError(f"s3://{location.bucket}/{location.key} is not a zip archive") from error


def _extract(archive: zipfile.ZipFile, into: Path) -> None:
    root = into.resolve()
    for member in archive.infolist():
        target = (into / member.filename).resolve()
        if root not in target.parents and target != root:
            raise ArtifactError(f"artifact entry {member.filename} points outside the source directory")
        archive.extract(member, into)
        mode = member.external_attr >> 16
        if mode and not member.is_dir():
            os.chmod(target, mode & 0o777)  # zip keeps the executable bit; extract() drops it


def package(spec: ArtifactSpec, src_dir: Path) -> bytes:
    """The zip of the files `spec` selects, as CodeBuild packages an
    artifact; ArtifactError when nothing matches."""
    base = src_dir / spec.base_directory if spec.base_directory else src_dir
    if not base.is_dir():
        raise ArtifactError(f"base directory {spec.base_directory} does not exist")
    included = [_glob(pattern) for pattern in spec.files]
    excluded = [_glob(pattern) for pattern in spec.exclude_paths]
    chosen = []
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        relative = path.relative_to(base).as_posix()
        wanted = any(rx.fullmatch(relative) for rx in included)
        if wanted and not any(rx.fullmatch(relative) for rx in excluded):
            chosen.append((path, path.name if spec.discard_paths else relative))
    if not chosen:
        raise ArtifactError("no matching artifact paths found")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, name in chosen:
            archive.write(path, name)
    return buffer.getvalue()


def upload(s3: Any, location: ArtifactLocation, body: bytes, key_arn: str | None) -> None:
    """Store an output artifact, SSE-KMS under `key_arn` (else the bucket's
    default key), as CodeBuild writes to a pipeline's artifact store."""
    extra = {"SSEKMSKeyId": key_arn} if key_arn else {}
    try:
        s3.put_object(
            Bucket=location.bucket, Key=location.key, Body=body, ServerSideEncryption="aws:kms", **extra
        )
    except Exception as error:  # botocore's ClientError and connection errors alike
        raise ArtifactError(f"writing s3://{location.bucket}/{location.key}: {error}") from error


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """A buildspec path pattern as a regex over relative paths: `**` crosses
    directories (`**/` also matching none), `*` and `?` stay within one,
    and a pattern naming a directory (`dist/`) takes everything under it."""
    pattern = pattern.strip().removeprefix("./")
    if pattern.endswith("/"):
        pattern += "**/*"
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))
