import os

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from engine import storage
from tests.s3_server import s3_env, s3_server  # noqa: F401 (fixtures)


def test_join_and_split():
    assert storage.join("s3://b/pre/", "shards", "/a.tar") == "s3://b/pre/shards/a.tar"
    assert storage.split_s3("s3://b/pre/shards/a.tar") == ("b", "pre/shards/a.tar")
    assert storage.join("/x/y", "a", "b.txt") == "/x/y/a/b.txt"


def test_local_write_read_list_delete(tmp_path):
    root = tmp_path / "rel"
    storage.write_bytes(str(root / "a" / "one.bin"), b"1")
    storage.write_bytes(str(root / "two.bin"), b"22")
    storage.write_bytes(str(root / "two.bin"), b"222")  # overwrite
    assert storage.read_bytes(str(root / "two.bin")) == b"222"
    assert storage.list_prefix(str(root)) == [str(root / "a" / "one.bin"), str(root / "two.bin")]
    with storage.open_read(str(root / "a" / "one.bin")) as f:
        assert f.read() == b"1"
    assert oct(os.stat(root / "two.bin").st_mode & 0o777) == oct(0o644)
    storage.delete(str(root / "two.bin"))
    storage.delete(str(root / "two.bin"))  # missing is fine
    assert not storage.exists(str(root / "two.bin"))
    assert storage.list_prefix(str(tmp_path / "nothing")) == []


def test_local_write_is_atomic_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    storage.write_bytes(str(target), b"old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        storage.write_bytes(str(target), b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temp file left behind


def test_local_upload_file_copies(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(1000))
    storage.upload_file(src, str(tmp_path / "out" / "dst.bin"))
    assert (tmp_path / "out" / "dst.bin").read_bytes() == src.read_bytes()


def test_retries_transient_errors_with_backoff(monkeypatch):
    sleeps, calls = [], []
    monkeypatch.setattr(storage.time, "sleep", sleeps.append)

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise EndpointConnectionError(endpoint_url="http://x")
        return "ok"

    assert storage._with_retries(flaky, "s3://b/k", attempts=4, backoff_s=0.5) == "ok"
    assert sleeps == [0.5, 1.0]


def test_retries_give_up_and_permanent_errors_are_not_retried(monkeypatch):
    monkeypatch.setattr(storage.time, "sleep", lambda s: None)
    calls = []

    def down():
        calls.append(1)
        raise EndpointConnectionError(endpoint_url="http://x")

    with pytest.raises(EndpointConnectionError):
        storage._with_retries(down, "s3://b/k", attempts=3)
    assert len(calls) == 3

    def denied():
        calls.append(1)
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")

    calls.clear()
    with pytest.raises(ClientError):
        storage._with_retries(denied, "s3://b/k", attempts=3)
    assert len(calls) == 1


@pytest.mark.integration
def test_s3_round_trip_with_multipart(s3_env, tmp_path):
    base = f"s3://{s3_env}/pre"
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(11 * 1024 * 1024))
    storage.upload_file(big, storage.join(base, "shards/big.bin"), multipart_threshold=5 * 1024 * 1024)
    storage.write_bytes(storage.join(base, "small.json"), b"{}")
    assert storage.list_prefix(base) == [f"{base}/shards/big.bin", f"{base}/small.json"]
    assert storage.read_bytes(storage.join(base, "shards/big.bin")) == big.read_bytes()
    head = storage.s3_client().head_object(Bucket=s3_env, Key="pre/shards/big.bin")
    assert head["ETag"].strip('"').endswith("-3")  # three 5 MiB+ parts: it really was multipart
    with storage.open_read(storage.join(base, "small.json")) as f:
        assert f.read() == b"{}"
    assert storage.exists(storage.join(base, "small.json"))
    storage.delete(storage.join(base, "small.json"))
    assert not storage.exists(storage.join(base, "small.json"))
    assert storage.list_prefix(f"s3://{s3_env}/other") == []


@pytest.mark.integration
def test_s3_rejects_wrong_credentials(s3_env, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "not-the-key")
    with pytest.raises(ClientError) as e:
        storage.write_bytes(f"s3://{s3_env}/x", b"1")
    assert "not-the-secret" not in str(e.value)


def test_s3_exists_is_false_only_for_not_found(monkeypatch):
    class Client:
        def __init__(self, code):
            self.code = code

        def head_object(self, Bucket, Key):
            raise ClientError({"Error": {"Code": self.code, "Message": "x"}}, "HeadObject")

    monkeypatch.setattr(storage, "s3_client", lambda: Client("404"))
    assert storage.exists("s3://b/k") is False
    monkeypatch.setattr(storage, "s3_client", lambda: Client("403"))
    with pytest.raises(ClientError, match="403"):  # "not found" would hide a permissions problem
        storage.exists("s3://b/k")


def test_abort_multipart_uploads_is_a_no_op_locally(tmp_path):
    assert storage.abort_multipart_uploads(str(tmp_path)) == 0
