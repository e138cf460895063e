"""A real `serve run` of serve/config.yaml on a free port, and plain-HTTP calls to it (shared by test files)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(base: str, path: str, body: bytes | None = None, content_type: str | None = None, key: str | None = None):
    """(status, parsed JSON body) of one request."""
    headers = {"Content-Type": content_type} if content_type else {}
    if key is not None:
        headers["X-API-Key"] = key
    req = urllib.request.Request(base + path, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


# Serve's fast path as cluster/aws.yaml and cluster/kuberay/rayservice.yaml set it (docs/SERVE.md).
FAST_PATH_ENV = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}


@contextlib.contextmanager
def serve_run(
    store: str, folder: Path, port: int, api_key: str | None = None, extra_env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """`serve run` of serve/config.yaml as shipped (only the port changed), serving the models in ``store``.

    ``extra_env`` reaches Ray and Serve as they start (e.g. :data:`FAST_PATH_ENV`).

    Yields the process once /healthz and /models answer; stops it with Ctrl-C (as a user would) after.
    """
    config = yaml.safe_load((REPO / "serve" / "config.yaml").read_text())
    config["http_options"]["port"] = port  # `serve run IMPORT_PATH` has no port flag
    config_path = folder / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    # "--address local": a fresh embedded Ray, never a cluster some `ray start` left behind.
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "FACTORY_API_KEY")}
    env.update(FACTORY_MODEL_STORE=store, PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0", **(extra_env or {}))
    if api_key:
        env["FACTORY_API_KEY"] = api_key
    log_path = folder / "serve.log"
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        serve_bin = str(Path(sys.executable).with_name("serve"))
        proc = subprocess.Popen(
            [serve_bin, "run", "--address", "local", str(config_path)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            _wait_until_up(proc, base, api_key, log_path)
            yield proc
        finally:
            _stop(proc)


def _wait_until_up(proc: subprocess.Popen, base: str, api_key: str | None, log_path: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve run exited with {proc.returncode}; log: {log_path.read_text()[-3000:]}")
        try:
            if request(base, "/healthz")[0] == 200 and request(base, "/models", key=api_key)[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            pass
        time.sleep(1)
    raise RuntimeError(f"serve run did not come up; log: {log_path.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGINT)  # serve run shuts the app and its Ray down on Ctrl-C
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
