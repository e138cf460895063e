"""Cluster operations: configs that parse and name real things, and real
`ray job submit` against a `ray start --head` cluster with token auth on."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from factory.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "cluster"
BIN = Path(sys.executable).parent


def _load(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


def _factory_args(entrypoint: str) -> list[str]:
    words = shlex.split(entrypoint)
    assert words[:3] == ["python", "-m", "factory"], entrypoint
    return words[3:]


def test_every_yaml_parses():
    files = sorted(CLUSTER.rglob("*.yaml"))
    assert len(files) >= 5
    for path in files:
        assert yaml.safe_load(path.read_text()), path


def test_aws_launcher_node_types_and_token_auth():
    cfg = _load("aws.yaml")
    types = cfg["available_node_types"]
    assert set(types) == {"head", "cpu_worker", "gpu_render"}
    assert types["gpu_render"]["resources"]["GPU"] == 1 and types["gpu_render"]["resources"]["blender"] >= 1
    for t in ("cpu_worker", "gpu_render"):
        assert 0 <= types[t]["min_workers"] <= types[t]["max_workers"]
    assert cfg["idle_timeout_minutes"] > 0
    assert all("RAY_AUTH_MODE=token" in c for c in cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"] if "ray start" in c)
    assert "--dashboard-host=127.0.0.1" in " ".join(cfg["head_start_ray_commands"])


def test_kuberay_manifests_name_real_commands_and_keep_auth_on():
    cluster = _load("kuberay/raycluster.yaml")
    assert cluster["kind"] == "RayCluster" and cluster["spec"]["authOptions"]["mode"] == "token"
    assert cluster["spec"]["enableInTreeAutoscaling"] is True
    groups = {g["groupName"]: g for g in cluster["spec"]["workerGroupSpecs"]}
    assert "blender" in groups["gpu-render"]["rayStartParams"]["resources"]
    for g in groups.values():
        assert g["minReplicas"] <= g["maxReplicas"]
    parser = build_parser()
    for name in ("rayjob-video.yaml", "rayjob-render.yaml"):
        job = _load(f"kuberay/{name}")
        assert job["kind"] == "RayJob"
        assert job["spec"]["clusterSelector"]["ray.io/cluster"] == cluster["metadata"]["name"]
        args = parser.parse_args(_factory_args(job["spec"]["entrypoint"]))  # raises on an unknown flag
        assert args.command in ("video", "render") and args.out.startswith("s3://")
    service = _load("kuberay/rayservice.yaml")
    assert service["spec"]["rayClusterConfig"]["authOptions"]["mode"] == "token"
    serve_cfg = yaml.safe_load(service["spec"]["serveConfigV2"])
    module = serve_cfg["applications"][0]["import_path"].split(":")[0]
    assert (REPO / (module.replace(".", "/") + ".py")).is_file()


def test_no_credentials_in_cluster_files():
    secret = re.compile(r"AKIA[0-9A-Z]{16}|aws_secret_access_key\s*[:=]\s*[A-Za-z0-9/+]{30,}|BEGIN (RSA|OPENSSH) PRIVATE KEY", re.I)
    for path in CLUSTER.rglob("*"):
        if path.is_file():
            assert not secret.search(path.read_text()), path


def test_dockerfile_uses_python_311_ray_260_and_installs_the_project():
    text = (CLUSTER / "Dockerfile").read_text()
    assert "rayproject/ray:2.60.0-py311" in text
    assert "pip install" in text and "import factory.cli, ray, bpy" in text


# -- a real cluster on this machine ------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _own_ports() -> list[str]:
    """Free ports for what every node otherwise binds at a fixed default (agent 52365, client
    server 10001), so a node never collides with another Ray on this machine."""
    return ["--dashboard-agent-listen-port", str(_free_port()), "--ray-client-server-port", str(_free_port())]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # jobs run this venv's python
    return env


def _wait_for_job_agent(address: str, timeout_s: float = 120) -> None:
    """`ray start` returns before the node's job agent serves; submit answers
    'No available agent' until then. Poll with a job that does nothing."""
    deadline = time.monotonic() + timeout_s
    while True:
        done = subprocess.run(
            [str(BIN / "ray"), "job", "submit", "--", "true"],
            env={**_env(), "RAY_ADDRESS": address, "RAY_AUTH_MODE": "token"}, capture_output=True, text=True, timeout=120,
        )
        if done.returncode == 0:
            return
        if "No available agent" not in done.stdout + done.stderr or time.monotonic() > deadline:
            raise RuntimeError(f"job server at {address} not ready: {(done.stdout + done.stderr)[-500:]}")
        time.sleep(2)


def _pids(pattern: str) -> set[int]:
    done = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
    return {int(p) for p in done.stdout.split()}


def _with_descendants(pids: set[int]) -> set[int]:
    """The processes and all their children (agents rename themselves, so only the tree finds them)."""
    found, todo = set(pids), list(pids)
    while todo:
        done = subprocess.run(["ps", "-o", "pid=", "--ppid", str(todo.pop())], capture_output=True, text=True, check=False)
        children = {int(p) for p in done.stdout.split()} - found
        found |= children
        todo += children
    return found


def _stop_nodes(gcs: str, *temp_dirs: Path) -> None:
    """Stop the nodes started with these temp dirs, their agents and the head's client server
    (found by the GCS address); a plain `ray stop` would also kill the test session's embedded Ray."""
    pids = _pids(f"address=[0-9.]+:{gcs.rsplit(':', 1)[1]}( |$)")  # the node IP, not 127.0.0.1
    for temp_dir in temp_dirs:
        pids |= _pids(str(temp_dir))
    pids = _with_descendants(pids) - {os.getpid()}
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`ray start --head` with a blender resource, token auth on (Ray's default).
    Yields the dashboard URL and the GCS address; a test may add nodes."""
    temp_dir = tmp_path_factory.mktemp("rayhead")
    dash, gcs = _free_port(), _free_port()
    subprocess.run(
        [str(BIN / "ray"), "start", "--head", "--num-cpus", "2", "--resources", json.dumps({"blender": 1}),
         "--port", str(gcs), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
         "--include-dashboard", "true", "--temp-dir", str(temp_dir), "--disable-usage-stats", *_own_ports()],
        env=_env(), check=True, capture_output=True, timeout=180,
    )
    address = f"http://127.0.0.1:{dash}"
    _wait_for_job_agent(address)
    added: list[Path] = []
    yield {"dashboard": address, "gcs": f"127.0.0.1:{gcs}", "added": added}
    _stop_nodes(f"127.0.0.1:{gcs}", temp_dir, *added)


@pytest.fixture(scope="module")
def head_node(cluster) -> str:
    return cluster["dashboard"]


def _submit(address: str, *args: str, env_extra: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**_env(), "RAY_ADDRESS": address, "RAY_AUTH_MODE": "token", **(env_extra or {})}
    return subprocess.run(
        [str(BIN / "ray"), "job", "submit", "--working-dir", str(REPO),
         "--runtime-env-json", json.dumps({"excludes": [".venv", ".git", "**/__pycache__"]}),
         "--", "python", "-m", "factory", *args],
        env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO,
    )


@pytest.mark.slow
def test_job_submit_runs_render_and_video_jobs_and_reports_failures(head_node, tmp_path, talking_3d):
    import numpy as np

    from factory.storage import open_location
    from factory.summary import summarize
    from factory.synthetic.character import random_character, write_character

    rng = np.random.default_rng(1)
    for i in range(2):
        write_character(random_character(rng, name=f"c{i}"), tmp_path / "models" / f"c{i}")
    jobs = {
        "render": ["render", "--models", str(tmp_path / "models"), "--out", str(tmp_path / "render"),
                   "--engine", "workbench", "--images-per-model", "2", "--render-workers", "1:1"],
        "video": ["video", "--input", str(talking_3d.path), "--out", str(tmp_path / "video"), "--style", "any",
                  "--workers", "1:1"],
    }
    for name, args in jobs.items():
        done = subprocess.run(
            [str(CLUSTER / "submit.sh"), *args],
            env={**_env(), "RAY_ADDRESS": head_node}, capture_output=True, text=True, timeout=600,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "succeeded" in done.stdout + done.stderr
        summary = summarize(open_location(str(tmp_path / name)))
        assert summary.status == "complete" and summary.errors == 0
        assert summary.samples == {"render": 4, "video": 2}[name]

    failed = _submit(head_node, "render", "--models", str(tmp_path / "no-such-models"), "--out", str(tmp_path / "x"))
    assert failed.returncode != 0
    text = failed.stdout + failed.stderr
    assert "no-such-models" in text and "failed" in text.lower()


@pytest.mark.slow
def test_job_submit_without_the_token_is_refused(head_node, tmp_path):
    done = _submit(head_node, "--help", env_extra={"RAY_AUTH_TOKEN": "not-the-token"}, timeout=120)
    assert done.returncode != 0
    text = (done.stdout + done.stderr).lower()
    assert "auth" in text or "401" in text or "403" in text


@pytest.mark.slow
def test_render_actors_land_on_both_nodes(cluster, tmp_path_factory, tmp_path):
    """A second node joins with its own blender resource and temp dir; a render
    run with a 2:2 pool places one Blender actor on each node."""
    import numpy as np

    from factory.synthetic.character import random_character, write_character

    temp_dir = tmp_path_factory.mktemp("raynode2")
    cluster["added"].append(temp_dir)
    env = {**_env(), "RAY_AUTH_MODE": "token"}  # a joining node must send the cluster token
    subprocess.run(
        [str(BIN / "ray"), "start", "--address", cluster["gcs"], "--num-cpus", "1",
         "--resources", json.dumps({"blender": 1}), "--temp-dir", str(temp_dir), "--disable-usage-stats", *_own_ports()],
        env=env, check=True, capture_output=True, timeout=180,
    )
    rng = np.random.default_rng(0)
    for i in range(4):
        write_character(random_character(rng, name=f"c{i}"), tmp_path / "models" / f"c{i}")
    done = subprocess.run(
        [sys.executable, "-m", "factory", "render", "--models", str(tmp_path / "models"), "--out", str(tmp_path / "out"),
         "--render-workers", "2:2", "--engine", "workbench", "--images-per-model", "2"],
        env={**env, "RAY_ADDRESS": cluster["gcs"]}, capture_output=True, text=True, timeout=600, cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rendered 8 images from 4 models" in done.stdout
    listed = subprocess.run(
        [str(BIN / "ray"), "list", "actors", "--address", cluster["dashboard"], "--detail", "--format", "json", "--limit", "1000"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )
    nodes = {a["node_id"] for a in json.loads(listed.stdout) if "BlenderRenderer" in a.get("class_name", "")}
    assert len(nodes) == 2
