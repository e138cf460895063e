"""factory.storage against the local disk and a real S3 HTTP API (moto)."""

from __future__ import annotations

import os
import socket

import pytest

from factory.storage import StorageConfig, StorageError, open_location, split_url


def test_plain_path_and_file_url_resolve_to_the_same_local_folder(tmp_path):
    a = open_location(str(tmp_path / "ds"))
    b = open_location(f"file://{tmp_path}/ds")
    assert a.is_local and b.is_local
    assert a.root == b.root == str(tmp_path / "ds")


@pytest.mark.parametrize("url", ["gopher://x/y", "hdfs://nn/data", "ftp://h/p"])
def test_unknown_scheme_is_one_clear_error(url):
    with pytest.raises(StorageError, match=r"unknown URL scheme .* use a local path or one of: file, s3"):
        split_url(url)


def test_s3_url_without_bucket_is_refused():
    with pytest.raises(StorageError, match="names no bucket"):
        split_url("s3://")


def test_local_atomic_write_leaves_nothing_on_failure(tmp_path):
    loc = open_location(str(tmp_path))
    with pytest.raises(RuntimeError):
        with loc.open_atomic("sub/x.bin") as fh:
            fh.write(b"partial")
            raise RuntimeError("killed")
    assert not loc.exists("sub/x.bin")
    assert os.listdir(tmp_path / "sub") == []  # no temp file left either
    loc.put_bytes("sub/x.bin", b"whole")
    assert loc.read_bytes("sub/x.bin") == b"whole"
    assert loc.list("sub") == ["x.bin"]


def test_s3_put_read_list_and_failed_upload_is_invisible(s3_env):
    loc = open_location(f"{s3_env}/ds")
    loc.ensure_writable()
    loc.put_bytes("a/b.txt", b"hello")
    assert loc.read_bytes("a/b.txt") == b"hello"
    assert loc.list("a") == ["b.txt"]
    assert loc.url_of("a", "b.txt") == f"{s3_env}/ds/a/b.txt"
    with pytest.raises(RuntimeError):
        with loc.open_atomic("a/c.bin") as fh:
            fh.write(b"x" * (6 << 20))  # more than one multipart block
            raise RuntimeError("killed")
    assert not loc.exists("a/c.bin")
    assert loc.list("a") == ["b.txt"]


def test_missing_bucket_is_one_clear_error(s3_env):
    loc = open_location("s3://no-such-bucket-for-factory/ds")
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-for-factory' does not exist"):
        loc.ensure_writable()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_endpoint_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    cfg = StorageConfig(endpoint_url=f"http://127.0.0.1:{_free_port()}", connect_timeout_s=1, max_attempts=1)
    loc = open_location("s3://bucket/ds", cfg)
    with pytest.raises(StorageError) as err:
        loc.ensure_writable()
    message = str(err.value)
    assert "s3://bucket/ds" in message and "\n" not in message
