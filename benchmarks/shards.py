"""Shard writer throughput vs plain baselines, measured in the same run.

Local: ``ShardedWriter`` (atomic temp+rename, fsync, index parquet, stats
marker) vs ``tarfile`` writing the same members to the same disk.
S3: ``ShardedWriter`` streaming to a real S3 HTTP API (moto server on
127.0.0.1) vs a bare ``s3fs`` put of the tars the plain baseline wrote.

    python benchmarks/shards.py [--mb 200] [--repeats 3] [--json out.json]

Prints a markdown table of MB/s and ratios (ours / baseline).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np

from factory.shards import SequentialAllocator, ShardedWriter, ShardLimits, make_key
from factory.storage import open_location

SAMPLE_BYTES = 50_000  # a typical 256x256 JPEG face crop
PER_SHARD = 1000


def make_samples(total_mb: int, seed: int = 0) -> list[dict]:
    """Incompressible JPEG-sized payloads plus a small json, as pipelines write."""
    rng = np.random.default_rng(seed)
    n = total_mb * 1_000_000 // SAMPLE_BYTES
    return [
        {
            "__key__": make_key("bench", f"{i:07d}"),
            "__input__": f"in{i}",
            "__input_rows__": 1,
            "__split__": "train",
            "jpg": rng.bytes(SAMPLE_BYTES),
            "json": json.dumps({"kind": "bench", "i": i}).encode(),
        }
        for i in range(n)
    ]


def write_plain_tars(samples: list[dict], folder: Path) -> list[Path]:
    """Baseline: tarfile, same members, same shard size, no index or marker."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for start in range(0, len(samples), PER_SHARD):
        path = folder / f"train-{start // PER_SHARD:06d}.tar"
        with tarfile.open(path, "w") as tar:
            for s in samples[start : start + PER_SHARD]:
                for field in ("jpg", "json"):
                    info = tarfile.TarInfo(f"{s['__key__']}.{field}")
                    info.size = len(s[field])
                    tar.addfile(info, BytesIO(s[field]))
        paths.append(path)
    return paths


def write_ours(samples: list[dict], url: str) -> None:
    out = open_location(url)
    with ShardedWriter(out, SequentialAllocator(), ShardLimits(max_samples=PER_SHARD)) as writer:
        writer.write_all(samples)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def start_s3() -> tuple[subprocess.Popen, str]:
    """moto's S3 server in its own process, so it does not share our GIL."""
    import boto3

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    moto = Path(sys.executable).with_name("moto_server")
    server = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.1)
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="bench")
    return server, endpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    samples = make_samples(args.mb)
    mb = sum(len(s["jpg"]) + len(s["json"]) for s in samples) / 1e6
    work = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    server, _ = start_s3()
    import s3fs

    s3 = s3fs.S3FileSystem(skip_instance_cache=True)
    times: dict[str, list[float]] = {"plain_tar": [], "ours_local": [], "s3fs_put": [], "ours_s3": []}
    try:
        for r in range(args.repeats):
            plain = work / f"plain{r}"
            times["plain_tar"].append(timed(lambda: write_plain_tars(samples, plain)))
            times["ours_local"].append(timed(lambda: write_ours(samples, str(work / f"ours{r}"))))
            tars = sorted(plain.iterdir())
            times["s3fs_put"].append(timed(lambda: [s3.put_file(str(p), f"bench/put{r}/{p.name}") for p in tars]))
            times["ours_s3"].append(timed(lambda: write_ours(samples, f"s3://bench/ours{r}")))
            shutil.rmtree(plain)
            shutil.rmtree(work / f"ours{r}")
    finally:
        server.terminate()
        shutil.rmtree(work, ignore_errors=True)
    rate = {k: mb / statistics.median(v) for k, v in times.items()}
    figures = {
        "payload_mb": round(mb, 1),
        "samples": len(samples),
        "repeats": args.repeats,
        "mb_per_s": {k: round(v, 1) for k, v in rate.items()},
        "ratio_local": round(rate["ours_local"] / rate["plain_tar"], 3),
        "ratio_s3": round(rate["ours_s3"] / rate["s3fs_put"], 3),
        "cpus": os.cpu_count(),
    }
    print("| path | ours MB/s | baseline MB/s | ratio |")
    print("|---|---|---|---|")
    print(f"| local disk | {rate['ours_local']:.0f} | {rate['plain_tar']:.0f} (tarfile) | {figures['ratio_local']:.2f} |")
    print(f"| S3 (moto) | {rate['ours_s3']:.0f} | {rate['s3fs_put']:.0f} (s3fs put) | {figures['ratio_s3']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
