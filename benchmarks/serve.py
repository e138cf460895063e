"""The HTTP endpoint through Ray Serve vs a direct in-process call of the same models.

Baseline, ``direct``: decode + detect (and + classify every face, for
/analyze) called in this process with one torch thread, as a replica has.
Each Serve set-up runs in a fresh child process, because Serve reads its
flags (RAY_SERVE_ENABLE_DIRECT_INGRESS, RAY_SERVE_THROUGHPUT_OPTIMIZED,
RAY_SERVE_ENABLE_HA_PROXY) when it starts: POST /detect at each concurrency
(default 1, 8, 32) and POST /analyze at 1, with dynamic batching on and off
(``max_batch_size: 1``). ``--apps`` compares app
builders in one run (e.g. an older checkout's app on PYTHONPATH).

Each client thread keeps one HTTP connection alive. The models are the
store's ``detector`` (YOLO) and ``classifier``.

    python benchmarks/serve.py --store DIR --requests 128 [--concurrency 1,32] [--json out.json]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from factory.synthetic.faces import FaceDatasetConfig, SIZE, draw_character, make_characters  # noqa: E402


@dataclass(frozen=True)
class Row:
    mode: str
    concurrency: int
    requests: int
    p50_ms: float
    p99_ms: float
    rps: float


def sample_jpeg(seed: int = 0) -> bytes:
    """A synthetic character on a plain background, as JPEG."""
    ch = make_characters(FaceDatasetConfig(characters=3, seed=seed))[0]
    rgba, _ = draw_character(ch, np.random.default_rng(seed), 10.0)
    rgb = Image.new("RGB", (SIZE, SIZE), (120, 180, 220))
    rgb.paste(Image.fromarray(rgba), mask=Image.fromarray(rgba[..., 3]))
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def measure(mode: str, call_factory: Callable[[], Callable[[], None]], concurrency: int, total: int) -> Row:
    """Run ``total`` calls from ``concurrency`` threads; each thread builds its own caller."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = max(1, total // concurrency)

    def worker() -> None:
        call = call_factory()
        call()  # warm-up: connection set-up stays out of the figures
        mine = []
        for _ in range(per_thread):
            t0 = time.perf_counter()
            call()
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for f in [pool.submit(worker) for _ in range(concurrency)]:
            f.result()
    wall = time.perf_counter() - start
    ms = sorted(v * 1000 for v in latencies)
    return Row(mode, concurrency, len(ms), round(statistics.median(ms), 2), round(ms[int(0.99 * (len(ms) - 1))], 2), round(len(ms) / wall, 1))


def http_caller(port: int, body: bytes, path: str) -> Callable[[], Callable[[], None]]:
    def factory() -> Callable[[], None]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

        def call() -> None:
            conn.request("POST", path, body=body, headers={"Content-Type": "image/jpeg"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")

        return call

    return factory


# Serve set-ups compared in one run: (label, extra environment, who answers HTTP).
# "proxy": Serve's HTTP proxy actor; "replica": the ingress replica's own port
# (direct ingress; what HAProxy forwards to on a cluster).
SETUPS = {
    "proxy": ({}, "proxy"),
    "throughput-optimized": ({"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}, "proxy"),
    "throughput-optimized-replica-port": ({"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}, "replica"),
    "haproxy": ({"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}, "proxy"),
}


def child(args: argparse.Namespace) -> int:
    """Start Ray + Serve with this process's environment, deploy the app, print its port, wait."""
    import importlib

    import psutil
    import ray
    from ray import serve

    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    module, name = args.app.split(":")
    build = getattr(importlib.import_module(module), name)
    detector = {"max_batch_size": args.batch_size, "batch_wait_timeout_s": args.batch_wait}
    serve.run(build({"store": args.store, "detector": detector}), name="bench", route_prefix="/")
    port = args.port
    if args.answer == "replica":  # the replica's own HTTP port (Serve picks it from 30000-31000)
        for proc in psutil.process_iter(["name", "cmdline"]):
            if "ServeReplica" in " ".join(proc.info["cmdline"] or []):
                ports = [c.laddr.port for c in proc.net_connections("tcp") if c.status == "LISTEN" and 30000 <= c.laddr.port <= 31000]
                port = ports[0] if ports else port
    print(f"READY {port}", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    serve.shutdown()
    ray.shutdown()
    return 0


def serve_rows(args: argparse.Namespace, setup: str, app: str, batch: int, body: bytes) -> list[Row]:
    """Measure one Serve set-up in a fresh child process (Serve reads its flags at start)."""
    import subprocess

    env_extra, answer = SETUPS[setup]
    env = {**os.environ, **env_extra, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    cmd = [sys.executable, __file__, "--child", "--app", app, "--answer", answer, "--batch-size", str(batch),
           "--batch-wait", str(args.batch_wait),
           "--port", str(args.port), "--cpus", str(args.cpus), "--store", args.store]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        line = ""
        while not line.startswith("READY"):
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise RuntimeError(f"{setup}: the Serve child exited with {proc.returncode}")
        port = int(line.split()[1])
        label = f"{app.split(':')[0]} {setup} batch={'on' if batch > 1 else 'off'}"
        rows = [measure(f"{label} /detect", http_caller(port, body, "/detect"), c, args.requests) for c in args.concurrency]
        rows.append(measure(f"{label} /analyze", http_caller(port, body, "/analyze"), 1, args.requests))
        return rows
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()


def run(args: argparse.Namespace) -> list[Row]:
    import torch

    from actors.classification import load_stored_classifier
    from serve.app import load_detector
    from serve.images import decode_image
    from serve.settings import DetectorSettings

    body = sample_jpeg()
    backend, info = load_detector(args.store, DetectorSettings())
    if info["backend"] != "yolo":
        raise SystemExit(f"no stored YOLO detector in {args.store!r} (MediaPipe is not thread-safe for the direct baseline)")
    predictor, _ = load_stored_classifier("classifier", args.store)
    print(f"models: {info['model']}, classifier", file=sys.stderr)
    # The replica has num_cpus=1, so Ray gives it one torch thread; the direct call gets the same.
    torch.set_num_threads(1)

    def decode():
        return decode_image(body, "image/jpeg", 1 << 24, 1 << 26)

    def analyze():
        image = decode()
        faces = backend([image])[0]
        if faces:
            predictor([image] * len(faces), [f.bbox for f in faces])

    rows = [measure("direct /detect", lambda: lambda: backend([decode()]), c, args.requests) for c in args.concurrency]
    rows.append(measure("direct /analyze", lambda: analyze, 1, args.requests))
    for app in args.apps:
        for setup in args.setups:
            for batch in (args.batch_size, 1):
                rows += serve_rows(args, setup, app, batch, body)
    return rows


def markdown(rows: list[Row]) -> str:
    lines = ["| mode | concurrency | requests | p50 ms | p99 ms | req/s |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.mode} | {r.concurrency} | {r.requests} | {r.p50_ms} | {r.p99_ms} | {r.rps} |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=200, help="requests per mode and concurrency level")
    p.add_argument("--concurrency", type=lambda s: [int(v) for v in s.split(",")], default=[1, 8, 32])
    p.add_argument("--batch-size", type=int, default=8, help="Detector max_batch_size when batching is on")
    p.add_argument("--batch-wait", type=float, default=0.0, help="Detector batch_wait_timeout_s when batching is on")
    p.add_argument("--store", default=os.environ.get("FACTORY_MODEL_STORE"), help="model store with a detector and a classifier (default FACTORY_MODEL_STORE)")
    p.add_argument("--port", type=int, default=8123)
    p.add_argument("--cpus", type=int, default=os.cpu_count())
    p.add_argument("--apps", type=lambda s: s.split(","), default=["serve.app:build_app"],
                   help="comma-separated app builders to compare (another checkout's app on PYTHONPATH, say)")
    p.add_argument("--setups", type=lambda s: s.split(","), default=list(SETUPS), help=f"of {', '.join(SETUPS)}")
    p.add_argument("--json", help="also write the rows as JSON here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--app", help=argparse.SUPPRESS)
    p.add_argument("--answer", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    rows = run(args)
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
