"""What dataset.json records so a run can be traced and redone: command, code, tools, models, inputs.

- the command line (``factory ...`` as typed; :func:`record_command` is
  called by the CLI), else the Python process's argv;
- the factory's version and git commit (``dirty`` when the checkout had
  uncommitted changes; no commit outside a git checkout);
- versions of every tool that shapes the output: Python packages read from
  their metadata (nothing heavy is imported) and ``ffmpeg -version``;
- the models the samples name (detector, classifier, embedding), read from
  the committed samples' json, so they are the ones actually used;
- the inputs manifest, ``inputs.parquet`` beside dataset.json: one row per
  input with its URL or path, id, status and sample count.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import io
import json
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

INPUTS_PARQUET = "inputs.parquet"
_REPO = Path(__file__).resolve().parents[1]
# Distributions whose version shapes what a run writes (OpenCV: every variant pinned to one version).
_PACKAGES = (
    "anime-factory", "ray", "numpy", "pyarrow", "webdataset", "opencv-python", "opencv-contrib-python",
    "decord", "av", "mediapipe", "webrtcvad-wheels", "noisereduce", "scenedetect", "yt-dlp", "pillow", "bpy",
    "ultralytics", "timm", "torch", "torchvision",
)
INPUT_SCHEMA = pa.schema(
    [("input_id", pa.string()), ("url", pa.string()), ("status", pa.string()), ("samples", pa.int64()),
     ("error", pa.string())]
)
_command: list[str] | None = None


def record_command(argv: list[str]) -> None:
    """Remember the ``factory`` command line of this process (the CLI calls this)."""
    global _command
    _command = ["factory", *argv]


def command() -> dict[str, Any]:
    """The command that made the dataset: ``factory`` argv when run from the CLI, and the process argv."""
    return {"factory": list(_command) if _command else None, "argv": list(sys.argv)}


def utc_now() -> str:
    """Now, as an ISO 8601 UTC timestamp with seconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _git(*args: str) -> str | None:
    if not (_REPO / ".git").exists() or shutil.which("git") is None:
        return None
    done = subprocess.run(["git", "-C", str(_REPO), *args], capture_output=True, text=True, timeout=30, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


@functools.cache
def code_version() -> dict[str, Any]:
    """The factory's package version and, in a git checkout, its commit and whether it was dirty."""
    try:
        version = metadata.version("anime-factory")
    except metadata.PackageNotFoundError:
        version = None
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"version": version, "git_commit": commit, "git_dirty": bool(status) if commit else None}


@functools.cache
def tool_versions() -> dict[str, str]:
    """Versions of Python, the packages that shape the output and ffmpeg (those installed)."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        done = subprocess.run([ffmpeg, "-hide_banner", "-version"], capture_output=True, text=True, timeout=30, check=False)
        first = (done.stdout.splitlines() or [""])[0]
        versions["ffmpeg"] = first.split()[2] if first.startswith("ffmpeg version") else first
    return versions


def models_used(json_texts: Iterable[str | None]) -> dict[str, list[str]]:
    """``name@version`` of the detectors, classifiers and embeddings the committed samples name."""
    found: dict[str, set[str]] = collections.defaultdict(set)
    for text in json_texts:
        try:
            meta = json.loads(text) if text else {}
        except ValueError:
            continue
        detector = meta.get("detector") if isinstance(meta, dict) else None
        if isinstance(detector, dict) and detector.get("name"):
            found["detector"].add(f"{detector['name']}@{detector.get('version')}")
        labels = meta.get("labels") if isinstance(meta, dict) else None
        if isinstance(labels, dict) and labels.get("model_version"):
            found["classifier"].add(str(labels["model_version"]))
        embedding = meta.get("embedding") if isinstance(meta, dict) else None
        if isinstance(embedding, dict) and embedding.get("name"):
            found["embedding"].add(f"{embedding['name']}@{embedding.get('version')}")
    return {role: sorted(names) for role, names in sorted(found.items())}


def inputs_table(index_rows: list[dict], inputs: Iterable[tuple[str, str]] = ()) -> pa.Table:
    """One row per input: id, URL or path, status (ok | error | empty | missing), committed samples.

    ``inputs`` are (input_id, url) pairs of this run; an input with no
    committed row is ``missing`` (a run cut off before it was written).
    """
    urls = dict(inputs)
    by_input: dict[str, list[dict]] = collections.defaultdict(list)
    for row in index_rows:
        by_input[row["input_id"]].append(row)
    rows = []
    for input_id in dict.fromkeys([*urls, *by_input]):
        own = by_input.get(input_id, [])
        statuses = {r["status"] for r in own}
        status = "missing" if not own else "error" if "error" in statuses else "ok" if "ok" in statuses else "empty"
        error = next((r["error"] for r in own if r["error"]), None)
        url = urls.get(input_id) or _url_from_json(own)
        rows.append({"input_id": input_id, "url": url, "status": status,
                     "samples": sum(r["status"] == "ok" for r in own), "error": error})
    return pa.Table.from_pylist(rows, schema=INPUT_SCHEMA)


def _url_from_json(rows: list[dict]) -> str | None:
    """An input's URL from its committed rows' json (``source_url`` / ``url``), for inputs not in this run."""
    for row in rows:
        try:
            meta = json.loads(row["json"]) if row.get("json") else {}
        except ValueError:
            continue
        url = meta.get("source_url") or meta.get("url") if isinstance(meta, dict) else None
        if url:
            return str(url)
    return None


def parquet_bytes(table: pa.Table) -> bytes:
    """A table as parquet file bytes."""
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()
