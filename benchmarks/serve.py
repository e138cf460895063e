"""POST /detect through Ray Serve vs a direct in-process call of the same model.

For each concurrency level (default 1, 8, 32) it sends the same JPEG:

- ``direct``: the detector backend called in this process (threads);
- ``serve batch=on``: HTTP to the Serve app with the Detector's dynamic batching;
- ``serve batch=off``: the same app reconfigured with ``max_batch_size: 1``.

Each client thread keeps one HTTP connection alive. The model is the store's
``detector`` (YOLO) when FACTORY_MODEL_STORE / --store has one, else the
MediaPipe fallback, in both the direct and the Serve runs.

    python benchmarks/serve.py --requests 200 [--store DIR] [--json out.json]
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


def http_caller(port: int, body: bytes) -> Callable[[], Callable[[], None]]:
    def factory() -> Callable[[], None]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

        def call() -> None:
            conn.request("POST", "/detect", body=body, headers={"Content-Type": "image/jpeg"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")

        return call

    return factory


def run(args: argparse.Namespace) -> list[Row]:
    import ray
    import torch
    from ray import serve

    from serve.app import build_app, load_detector
    from serve.images import decode_image
    from serve.settings import DetectorSettings

    body = sample_jpeg()
    store = args.store or os.environ.get("FACTORY_MODEL_STORE")
    backend, info = load_detector(store, DetectorSettings())
    print(f"model: {info['backend']} {info['model']}", file=sys.stderr)
    rows = []
    # The Detector replica has num_cpus=1, so Ray gives it one torch thread; the direct call gets the same.
    torch.set_num_threads(1)
    for c in args.concurrency:
        # Direct: decode + detect, the work a Serve request does, without Serve.
        rows.append(measure("direct", lambda: lambda: backend([decode_image(body, "image/jpeg", 1 << 24, 1 << 26)]), c, args.requests))
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    wait = DetectorSettings().batch_wait_timeout_s
    modes = [
        (f"serve batch=on (wait {wait * 1000:g} ms)", args.batch_size, wait),
        ("serve batch=on (wait 5 ms)", args.batch_size, 0.005),
        ("serve batch=off", 1, wait),
    ]
    for mode, batch, wait_s in modes:
        detector = {"max_batch_size": batch, "batch_wait_timeout_s": wait_s}
        serve.run(build_app({"store": store, "detector": detector}), name="bench", route_prefix="/")
        for c in args.concurrency:
            rows.append(measure(mode, http_caller(args.port, body), c, args.requests))
    serve.shutdown()
    ray.shutdown()
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
    p.add_argument("--store", help="model store (default FACTORY_MODEL_STORE)")
    p.add_argument("--port", type=int, default=8123)
    p.add_argument("--cpus", type=int, default=os.cpu_count())
    p.add_argument("--json", help="also write the rows as JSON here")
    args = p.parse_args()
    rows = run(args)
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
