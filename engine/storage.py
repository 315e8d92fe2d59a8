"""One interface over local paths and s3:// URIs.

Ingest reads sources through `read_bytes` / `exists` / `join`; the release writer writes through
`write_bytes` (atomic on local disks) and `upload_file` (multipart on S3), and lists or deletes
with `list_prefix` / `delete`.

S3 endpoint, region and credentials come from the usual AWS environment and config files
(`AWS_ENDPOINT_URL` for S3-compatible stores such as SeaweedFS or MinIO; `AWS_MAX_ATTEMPTS` for
botocore's own retries). Nothing here logs or formats credentials: errors name URIs only.

`python -m engine.storage cat URI` streams an object to stdout; the release reader uses it as a
webdataset `pipe:` command so S3 shards stream without a local copy.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Callable
from urllib.parse import urlparse

log = logging.getLogger(__name__)

S3_MIN_PART_SIZE = 5 * 1024 * 1024  # S3 rejects multipart parts below this (except the last)


def is_s3(uri: str) -> bool:
    return str(uri).startswith("s3://")


def join(base: str, *parts: str) -> str:
    if is_s3(base):
        return "/".join([base.rstrip("/")] + [p.strip("/") for p in parts])
    return str(Path(base).joinpath(*parts))


def split_s3(uri: str) -> tuple[str, str]:
    u = urlparse(uri)
    return u.netloc, u.path.lstrip("/")


_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def s3_client():
    """A boto3 S3 client for the current AWS environment (cached per process and environment).

    boto3 clients are thread-safe but not fork-safe, hence the pid in the cache key; the
    endpoint and key id are in it so tests that start their own server get a fresh client.
    """
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("S3_ENDPOINT_URL")
    attempts = int(os.environ.get("AWS_MAX_ATTEMPTS", "5"))
    key = (os.getpid(), endpoint, os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_PROFILE"), attempts)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            # a fresh session: the default one caches credentials from its first use
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint,
                config=Config(retries={"max_attempts": attempts, "mode": "standard"}),
            )
            _clients[key] = client
    return client


def read_bytes(uri: str) -> bytes:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return Path(uri).read_bytes()


def exists(uri: str) -> bool:
    if is_s3(uri):
        from botocore.exceptions import ClientError

        bucket, key = split_s3(uri)
        try:
            s3_client().head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as e:
            if is_not_found(e):
                return False
            raise  # e.g. 403: "no" would hide the real problem behind "not found"
    return Path(uri).exists()


def open_read(uri: str) -> IO[bytes]:
    """A binary stream over the object (S3: streamed, not buffered whole). Close it when done."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        return s3_client().get_object(Bucket=bucket, Key=key)["Body"]
    return open(uri, "rb")


def write_bytes(uri: str, data: bytes) -> None:
    """Write a whole object. Local: temp file in the same folder + os.replace, so readers see
    either the old file or the new one, never a torn write. S3: a single PUT (atomic there)."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        _with_retries(lambda: s3_client().put_object(Bucket=bucket, Key=key, Body=data), uri)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make published files private
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def upload_file(
    local_path: str | Path,
    uri: str,
    *,
    multipart_threshold: int = 8 * 1024 * 1024,
    attempts: int = 4,
    backoff_s: float = 1.0,
) -> None:
    """Copy a local file to `uri`. S3: boto3 managed transfer, multipart above
    `multipart_threshold` (parts of at least 5 MiB), whole-file retries with exponential
    backoff on top of botocore's per-request retries. Local: atomic copy (temp + replace)."""
    if not is_s3(uri):
        dest = Path(uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        os.close(fd)
        try:
            os.chmod(tmp, 0o644)
            shutil.copyfile(local_path, tmp)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return
    from boto3.s3.transfer import TransferConfig

    bucket, key = split_s3(uri)
    config = TransferConfig(
        multipart_threshold=multipart_threshold,
        multipart_chunksize=max(multipart_threshold, S3_MIN_PART_SIZE),
    )
    _with_retries(
        lambda: s3_client().upload_file(str(local_path), bucket, key, Config=config),
        uri, attempts=attempts, backoff_s=backoff_s,
    )


def list_prefix(uri: str) -> list[str]:
    """Every object (S3) or file (local, recursive) under `uri`, as full URIs, sorted."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        prefix = key.rstrip("/") + "/" if key else ""
        out: list[str] = []
        for page in s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out += [f"s3://{bucket}/{o['Key']}" for o in page.get("Contents", [])]
        return sorted(out)
    root = Path(uri)
    if not root.is_dir():
        return []
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


def abort_multipart_uploads(uri: str) -> int:
    """Abort the unfinished multipart uploads under an s3:// prefix (a crashed upload leaves
    its parts stored, and billed, but invisible to listings); how many. Local: nothing to do."""
    if not is_s3(uri):
        return 0
    bucket, key = split_s3(uri)
    prefix = key.rstrip("/") + "/" if key else ""
    client = s3_client()
    n = 0
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for up in page.get("Uploads", []):
            _with_retries(lambda: client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"]),
                          f"s3://{bucket}/{up['Key']}")
            n += 1
    return n


def delete(uri: str) -> None:
    """Remove one object/file; missing is not an error."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        _with_retries(lambda: s3_client().delete_object(Bucket=bucket, Key=key), uri)
        return
    Path(uri).unlink(missing_ok=True)


def _error_code(e: BaseException | None) -> str:
    """The S3 error code of e, or of the error it wraps (boto3's S3UploadFailedError)."""
    while e is not None:
        code = getattr(e, "response", {}).get("Error", {}).get("Code")
        if code:
            return str(code)
        e = e.__cause__ or e.__context__
    return ""


error_code = _error_code


def is_not_found(e: BaseException) -> bool:
    if isinstance(e, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        return True
    return _error_code(e) in ("NoSuchKey", "404", "NotFound")


def read_or_none(uri: str) -> bytes | None:
    """The object's bytes, or None when it does not exist (other errors are raised)."""
    try:
        return read_bytes(uri)
    except Exception as e:
        if is_not_found(e):
            return None
        raise


def _with_retries(fn: Callable, uri: str, *, attempts: int = 4, backoff_s: float = 1.0):
    """Call fn, retrying transient failures with exponential backoff. Client errors that will
    not heal by retrying (auth, missing bucket, failed precondition) are raised at once."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    permanent = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket",
                 "PreconditionFailed", "InvalidBucketName", "412", "403"}
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except (BotoCoreError, ClientError, S3UploadFailedError, OSError) as e:
            if _error_code(e) in permanent or attempt == attempts:
                raise
            delay = backoff_s * 2 ** (attempt - 1)
            log.warning("%s: attempt %d/%d failed (%s); retrying in %.1fs",
                        uri, attempt, attempts, type(e).__name__, delay)
            time.sleep(delay)


def _cat(uri: str) -> None:
    """Stream one object to stdout (the reader's `pipe:` helper)."""
    out = sys.stdout.buffer
    with open_read(uri) as f:
        while chunk := f.read(1 << 20):
            out.write(chunk)
    out.flush()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "cat":
        sys.exit("usage: python -m engine.storage cat URI")
    try:
        _cat(sys.argv[2])
    except BrokenPipeError:  # the reader stopped early; not an error
        sys.exit(141)
