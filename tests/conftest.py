"""Shared fixtures: a real S3 HTTP API (moto server) and a real local Ray."""

from __future__ import annotations

import logging
import os
import uuid

import pytest

pytest_plugins = ["tests.fixtures_video"]


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """moto's S3 server on 127.0.0.1 (real HTTP, as s3fs's own tests use)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _aws_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch) -> str:
    """AWS environment pointing at the moto server; returns a fresh bucket URL."""
    import boto3

    for k, v in _aws_env(s3_endpoint).items():
        monkeypatch.setenv(k, v)
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return f"s3://{bucket}"


@pytest.fixture(scope="session")
def ray_local(s3_endpoint):
    """One embedded local Ray for the whole session (2 CPUs, like CI).

    Its workers get the moto S3 credentials, as cluster workers get theirs.
    """
    import ray

    os.environ.pop("RAY_ADDRESS", None)
    if not ray.is_initialized():
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=1 << 30,
            log_to_driver=False,
            runtime_env={"env_vars": _aws_env(s3_endpoint)},
        )
    yield ray
    ray.shutdown()
