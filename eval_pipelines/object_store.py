"""Publishing a run's artifact folder to S3 (or any S3-compatible store), and reading it back.

The manifest convention
-----------------------
An artifact folder published to ``s3://bucket/prefix`` is the set of objects
``prefix/<file name>`` plus one ``prefix/_manifest.json``, written **last**::

    {
      "format": 1,
      "published_at": "2026-11-23T06:00:00+00:00",
      "files": [
        {"name": "comparison.parquet", "size": 1234, "sha256": "...",
         "content_type": "application/vnd.apache.parquet"},
        ...
      ]
    }

S3 has no atomic rename, so completeness is signalled by the manifest instead:

* A folder is complete exactly when ``_manifest.json`` exists. Readers read the manifest first
  and only the files it lists; a folder without one is being published (or a publish failed)
  and must be treated as absent.
* A publish deletes the previous manifest before touching anything else, uploads the data
  files, deletes the keys of the previous run that are not in the new set, and writes the new
  manifest last. So whenever a manifest exists, the objects it lists are the ones it describes.
  A reader that fetched an older manifest just before a re-run started can still race it; the
  ``sha256`` of each file lets such a reader detect the mix and retry.
* Publishing identical content again is a no-op (the existing manifest, including its
  ``published_at``, is kept), so a retried job does not make the folder flicker incomplete.

Only the folder's direct children are managed: keys in deeper "sub-folders" under the prefix
are never deleted, so pointing the URL at a parent of other runs cannot wipe them.

Credentials come only from boto3's default chain (environment, shared config/profile, instance
or container role) and never appear in arguments, logs or error messages. The endpoint is the
``endpoint_url`` argument, else boto3's own ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from eval_pipelines.errors import EvalError

if TYPE_CHECKING:  # boto3 is imported lazily: the rest of the engine never pays for it
    from botocore.client import BaseClient as S3Client

logger = logging.getLogger(__name__)

MANIFEST = "_manifest.json"
MANIFEST_FORMAT = 1
CONTENT_TYPES = {
    ".parquet": "application/vnd.apache.parquet",
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"

# Bounded retries: a transient 5xx/throttle/connection error is retried a few times with the
# SDK's jittered backoff, but an unreachable endpoint fails within seconds, not minutes.
MAX_ATTEMPTS = 3
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0

# S3 bucket naming rules (lower-case letters, digits, dots, hyphens; 3-63 characters).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CREDENTIAL_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")


def parse_s3_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/some/prefix`` into ``("bucket", "some/prefix")``.

    The prefix has no leading or trailing slash and may be empty (``s3://bucket``). Anything
    that is not a plain S3 URL (another scheme, a query string, credentials in the netloc, an
    invalid bucket name, ``..`` segments) is rejected here rather than producing odd keys.
    """
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise EvalError(f"{url!r} is not an S3 URL; expected s3://bucket/prefix")
    parts = urlsplit(url)
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise EvalError(
            f"{_redact_netloc(url)}: an S3 URL is s3://bucket/prefix, without query string, "
            "fragment or credentials"
        )
    bucket = parts.netloc
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise EvalError(
            f"{url!r}: {bucket!r} is not a valid S3 bucket name (3-63 lower-case letters, "
            "digits, dots or hyphens)"
        )
    prefix = parts.path.strip("/")
    segments = prefix.split("/") if prefix else []
    if any(s in ("", ".", "..") for s in segments):
        raise EvalError(f"{url!r}: the prefix has an empty, '.' or '..' path segment")
    return bucket, prefix


@dataclass(frozen=True)
class _File:
    path: Path
    name: str
    size: int
    sha256: str
    content_type: str

    def entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "content_type": self.content_type,
        }


def publish_folder(folder: str | os.PathLike, url: str, *, endpoint_url: str | None = None) -> str:
    """Upload every file of a flat local artifact folder to ``url``; return the final URL.

    Follows the manifest convention of this module: data files first, stale keys of a previous
    run deleted, ``_manifest.json`` last. Re-publishing identical content changes nothing.
    Any failure is an :class:`EvalError` naming the bucket, the prefix and the failing file.
    """
    bucket, prefix = parse_s3_url(url)
    if not prefix:
        # Publishing deletes stale keys: at a bucket's root that could remove unrelated objects.
        raise EvalError(f"{url}: give a prefix to publish into, e.g. s3://{bucket}/evals/<week>")
    target = f"s3://{bucket}/{prefix}"
    files = _local_files(Path(folder))
    client = _client(endpoint_url)
    where = f"publishing {folder} to {target}"

    with _s3_errors(client, where, bucket, "listing the existing objects"):
        existing = _list_children(client, bucket, prefix)
    new_names = {f.name for f in files}

    if MANIFEST in existing:
        with _s3_errors(client, where, bucket, MANIFEST):
            previous = _read_manifest(client, bucket, f"{prefix}/{MANIFEST}")
        if _same_content(previous, files, existing):
            logger.info("%s: identical content already published, nothing to do", target)
            return target
        with _s3_errors(client, where, bucket, f"deleting the previous {MANIFEST}"):
            client.delete_object(Bucket=bucket, Key=f"{prefix}/{MANIFEST}")

    for file in files:
        with _s3_errors(client, where, bucket, file.name):
            _put_file(client, bucket, f"{prefix}/{file.name}", file)

    stale = sorted(set(existing) - new_names - {MANIFEST})
    if stale:
        with _s3_errors(client, where, bucket, f"deleting stale {', '.join(stale[:5])}"):
            _delete_keys(client, bucket, [f"{prefix}/{name}" for name in stale])

    manifest = {
        "format": MANIFEST_FORMAT,
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": [f.entry() for f in files],
    }
    body = (json.dumps(manifest, indent=2) + "\n").encode()
    with _s3_errors(client, where, bucket, MANIFEST):
        client.put_object(
            Bucket=bucket,
            Key=f"{prefix}/{MANIFEST}",
            Body=body,
            ContentType="application/json",
            ChecksumSHA256=base64.b64encode(hashlib.sha256(body).digest()).decode(),
        )
    logger.info("published %d files to %s (stale keys deleted: %d)", len(files), target, len(stale))
    return target


def read_text(url: str, *, endpoint_url: str | None = None) -> str:
    """Return one object (e.g. ``.../verdict.json``) as UTF-8 text."""
    bucket, key = parse_s3_url(url)
    if not key:
        raise EvalError(f"{url}: name an object, e.g. s3://{bucket}/path/verdict.json")
    client = _client(endpoint_url)
    with _s3_errors(client, f"reading s3://{bucket}/{key}", bucket, key.rsplit("/", 1)[-1]):
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise EvalError(f"s3://{bucket}/{key} is not UTF-8 text") from None


def publish_file(path: str | os.PathLike, url: str, *, endpoint_url: str | None = None) -> str:
    """Upload one file (a model's ``dashboard.html``) to the object ``url``; return ``url``.

    One PUT replaces an object whole, so a reader sees the old page or the new one, never a
    mix: no manifest is needed for a single file."""
    bucket, key = parse_s3_url(url)
    if not key:
        raise EvalError(f"{url}: name an object, e.g. s3://{bucket}/evals/model/dashboard.html")
    path = Path(path)
    file = _file(path, path.name)
    client = _client(endpoint_url)
    with _s3_errors(client, f"publishing {path} to {url}", bucket, path.name):
        _put_file(client, bucket, key, file)
    return f"s3://{bucket}/{key}"


def fetch_folders(
    url: str,
    into: str | os.PathLike,
    names: tuple[str, ...],
    *,
    endpoint_url: str | None = None,
) -> list[str]:
    """Copy the files ``names`` of every complete folder under ``url`` into ``into/<folder>/``.

    A folder is complete when it has a manifest (the convention above), and only the files its
    manifest lists are read, each checked against the manifest's sha256. A local folder whose
    files already match the manifest is not downloaded again. Each file is written to a
    temporary name and renamed, so a failure leaves no partial file. Returns the folders
    copied or already current, in name order.
    """
    bucket, prefix = parse_s3_url(url)
    client = _client(endpoint_url)
    where = f"reading the folders of s3://{bucket}/{prefix}"
    with _s3_errors(client, where, bucket, "listing the folders"):
        folders = _list_subfolders(client, bucket, prefix)
    current = []
    for folder in folders:
        key = f"{prefix}/{folder}" if prefix else folder
        with _s3_errors(client, where, bucket, f"{folder}/{MANIFEST}"):
            try:
                manifest = _read_manifest(client, bucket, f"{key}/{MANIFEST}")
            except client.exceptions.NoSuchKey:
                continue  # being published, or a publish failed: not a folder yet
        listed = {f["name"]: f for f in (manifest or {}).get("files", [])}
        if not set(names) <= set(listed):
            continue
        local = Path(into) / folder
        local.mkdir(parents=True, exist_ok=True)
        for name in names:
            target = local / name
            entry = listed[name]
            if target.exists() and _file(target, name).sha256 == entry["sha256"]:
                continue
            with _s3_errors(client, where, bucket, f"{folder}/{name}"):
                body = client.get_object(Bucket=bucket, Key=f"{key}/{name}")["Body"].read()
            if hashlib.sha256(body).hexdigest() != entry["sha256"]:
                raise EvalError(
                    f"s3://{bucket}/{key}/{name} does not match its manifest (a re-publish "
                    "raced this read); run again"
                )
            staging = target.with_name(f".{name}.tmp-{os.getpid()}")
            staging.write_bytes(body)
            staging.replace(target)
        current.append(folder)
    return current


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


def _local_files(folder: Path) -> list[_File]:
    if not folder.is_dir():
        raise EvalError(f"{folder}: not a folder; publish the --out folder of a run")
    files = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue  # editor/OS litter and the writer's own staging names
        if not path.is_file():
            raise EvalError(
                f"{path}: artifact folders are flat, but this is a sub-folder; remove it or "
                "publish its parent's files only"
            )
        if path.name == MANIFEST:
            raise EvalError(f"{path}: {MANIFEST} is reserved for the publish manifest")
        files.append(_file(path, path.name))
    if not files:
        raise EvalError(f"{folder}: the folder is empty; nothing to publish")
    return files


def _file(path: Path, name: str) -> _File:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    content_type = CONTENT_TYPES.get(path.suffix.lower(), DEFAULT_CONTENT_TYPE)
    return _File(path, name, path.stat().st_size, digest.hexdigest(), content_type)


def _client(endpoint_url: str | None) -> S3Client:
    """An S3 client from boto3's default credential chain, with bounded retries and timeouts."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
    )
    try:
        return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
    except ValueError as exc:  # e.g. a malformed endpoint URL
        raise EvalError(f"S3 endpoint {_describe_endpoint(endpoint_url)}: {exc}") from None


def _list_children(client: S3Client, bucket: str, prefix: str) -> dict[str, int]:
    """Size of every direct child key of ``prefix/`` (deeper keys are not this folder's)."""
    children: dict[str, int] = {}
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}/", Delimiter="/"):
        for item in page.get("Contents", []):
            children[item["Key"][len(prefix) + 1 :]] = int(item["Size"])
    return children


def _list_subfolders(client: S3Client, bucket: str, prefix: str) -> list[str]:
    """Names of the "sub-folders" directly under ``prefix/``, in name order."""
    names: list[str] = []
    paginator = client.get_paginator("list_objects_v2")
    start = f"{prefix}/" if prefix else ""
    for page in paginator.paginate(Bucket=bucket, Prefix=start, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            names.append(common["Prefix"][len(start) :].rstrip("/"))
    return sorted(names)


def _read_manifest(client: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return json.loads(body)
    except ValueError:  # a corrupt manifest is simply replaced
        return None


def _same_content(previous: Any, files: list[_File], existing: dict[str, int]) -> bool:
    """Whether the published folder already is exactly ``files`` (by name, size and sha256)."""
    if not isinstance(previous, dict) or previous.get("format") != MANIFEST_FORMAT:
        return False
    if previous.get("files") != [f.entry() for f in files]:
        return False
    expected = {f.name: f.size for f in files}
    expected[MANIFEST] = existing.get(MANIFEST, -1)
    return existing == expected


def _put_file(client: S3Client, bucket: str, key: str, file: _File) -> None:
    # ChecksumSHA256 makes S3 verify the bytes it stored against our digest of the local file.
    with file.path.open("rb") as body:
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType=file.content_type,
            ChecksumSHA256=base64.b64encode(bytes.fromhex(file.sha256)).decode(),
            Metadata={"sha256": file.sha256},
        )


def _delete_keys(client: S3Client, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
        batch = keys[start : start + 1000]
        response = client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
        )
        errors = response.get("Errors") or []
        if errors:  # DeleteObjects reports per-key failures in a 200 response
            first = errors[0]
            raise _KeyErrors(first.get("Code", "Error"), first.get("Key", "?"), len(errors))


class _KeyErrors(Exception):
    def __init__(self, code: str, key: str, count: int) -> None:
        super().__init__(f"{count} key(s) could not be deleted, first {key}: {code}")
        self.code = code


@contextmanager
def _s3_errors(client: S3Client, where: str, bucket: str, step: str) -> Iterator[None]:
    """Turn storage errors into one-sentence :class:`EvalError` s without credentials.

    ``from None``: the botocore exception (with request details) is not chained, so nothing
    but the scrubbed sentence reaches the CLI's output or a log handler.
    """
    try:
        yield
    except EvalError:
        raise
    except Exception as exc:
        reason = _reason(exc, bucket, client)
        if reason is None:
            raise  # not a storage error: a bug, let it surface as is
        raise EvalError(_scrub(f"{where}: {step} failed: {reason}")) from None


def _reason(exc: Exception, bucket: str, client: S3Client) -> str | None:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    endpoint = _describe_endpoint(client.meta.endpoint_url)
    if isinstance(exc, _KeyErrors):
        return str(exc)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return f"bucket {bucket!r} does not exist at {endpoint}"
        if code == "NoSuchKey" or (code == "404" and status == 404):
            return "no such object"
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
            return f"the S3 credentials were rejected ({code}); check the environment's AWS keys"
        if code in ("AccessDenied", "AllAccessDisabled", "403") or status == 403:
            return f"access denied to bucket {bucket!r} for these credentials"
        message = str(error.get("Message", "")).strip()
        return f"{code or status}{': ' + message if message else ''}"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no usable AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE or a role)"
        )
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return f"could not connect to the S3 endpoint {endpoint} after {MAX_ATTEMPTS} attempts"
    if isinstance(exc, ReadTimeoutError):
        return f"the S3 endpoint {endpoint} did not answer within {READ_TIMEOUT_S:g}s"
    if isinstance(exc, BotoCoreError):
        return f"{type(exc).__name__} talking to {endpoint}"
    if isinstance(exc, OSError):  # reading the local file
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return None


def _describe_endpoint(endpoint_url: str | None) -> str:
    """Scheme, host and port only: an endpoint URL could carry user info or a query."""
    if not endpoint_url:
        return "the default AWS endpoint"
    parts = urlsplit(endpoint_url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}"


def _redact_netloc(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"


def _scrub(message: str) -> str:
    """Belt and braces: remove any credential value from the environment from a message."""
    for name in _CREDENTIAL_VARIABLES:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            message = message.replace(value, "***")
    return message
