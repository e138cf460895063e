"""A long-lived Blender renderer for Ray Data actor pools.

`BlenderRenderer` is the pool's callable class: one input row (a model file)
in, its image rows out. It never imports bpy itself. Each actor owns a
`BlenderProcess`, a child process (multiprocessing "spawn") that imports bpy
and runs one job per model: import once, render every image by changing
pose, morphs, light and style, then reset Blender to an empty file. The
child is replaced every `recycle_every` models, so memory stays flat, and
after a crash or a timeout, so a segfault on a broken model costs that
model one error row and not the actor.
"""

from __future__ import annotations

import importlib
import json
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager, Iterator

from factory.rows import rows_for_input
from factory.render.jobs import ModelRender, RenderJob, RenderSettings
from factory.render.sampling import SamplingConfig
from factory.shards import make_key
from factory.sources.archives import archive_model
from factory.storage import open_location

log = logging.getLogger(__name__)

RENDER_MODEL = "factory.render.scene:render_model"
INSPECT_MODEL = "factory.render.scene:inspect_model"


class WorkerError(RuntimeError):
    """A job failed in, or took down, the Blender child process."""


@dataclass(frozen=True)
class WorkerSettings:
    """Life cycle of the Blender child process."""

    recycle_every: int = 20  # models per process; a fresh process then starts
    timeout_s: float = 1800.0  # per job (one model); the process is killed past it
    quiet: bool = True  # send Blender's per-frame prints to /dev/null


def _is_blender_script_dir(path: str) -> bool:
    """True for the folders `import bpy` adds to sys.path (bpy/<version>/scripts/...)."""
    parts = Path(path).parts
    return "bpy" in parts and "scripts" in parts[parts.index("bpy"):]


def _serve(conn, quiet: bool) -> None:
    """Child main loop: run ("module:function", args) requests until told to stop."""
    # spawn hands the child the parent's sys.path; if the parent imported bpy, that path
    # holds Blender's script folders, whose pure-Python 'bpy' would shadow the real module
    sys.path[:] = [p for p in sys.path if not _is_blender_script_dir(p)]
    if quiet:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # Blender prints from C straight to fd 1
    while True:
        request = conn.recv()
        if request is None:
            return
        target, args = request
        try:
            module, name = target.split(":")
            conn.send((True, getattr(importlib.import_module(module), name)(*args)))
        except Exception as exc:  # reported to the parent, which turns it into an error row
            conn.send((False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))


class BlenderProcess:
    """A bpy child process that runs jobs by name, recycled every N jobs and after a crash."""

    def __init__(self, settings: WorkerSettings = WorkerSettings()) -> None:
        self.settings = settings
        self._proc: Any = None
        self._conn: Any = None
        self.jobs_done = 0  # in the current process
        self.processes_started = 0

    @property
    def pid(self) -> int | None:
        """Process id of the current child, None when none runs."""
        return self._proc.pid if self._proc is not None else None

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(child, self.settings.quiet), daemon=True)
        proc.start()
        child.close()
        self._proc, self._conn, self.jobs_done = proc, parent, 0
        self.processes_started += 1

    def call(self, target: str, *args: Any) -> Any:
        """Run `module:function(*args)` in the child; WorkerError when it fails or dies."""
        if self._proc is None or self.jobs_done >= self.settings.recycle_every:
            self.stop()
            self._start()
        self._conn.send((target, args))
        try:
            if not self._conn.poll(self.settings.timeout_s):
                self._kill()
                raise WorkerError(f"Blender job timed out after {self.settings.timeout_s:.0f} s")
            ok, value = self._conn.recv()
        except (EOFError, ConnectionError, OSError):
            code = self._kill()
            raise WorkerError(f"Blender process died (exit code {code})") from None
        self.jobs_done += 1
        if not ok:
            raise WorkerError(value)
        return value

    def peak_rss_bytes(self) -> int:
        """Peak resident memory of the current child (VmHWM), 0 when none runs."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except (OSError, TypeError):
            return 0
        line = next((ln for ln in status.splitlines() if ln.startswith("VmHWM:")), "VmHWM: 0 kB")
        return int(line.split()[1]) * 1024

    def _kill(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.join(10)
        return proc.exitcode if proc is not None else None

    def stop(self) -> None:
        """Ask the child to exit (killed if it does not within 10 s)."""
        if self._proc is None:
            return
        try:
            self._conn.send(None)
            self._proc.join(10)
        except (OSError, ValueError):
            pass
        self._kill()

    def __del__(self) -> None:
        self.stop()


@dataclass(frozen=True)
class RendererConfig:
    """What a render actor needs: sampling, render and process settings."""

    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    settings: RenderSettings = field(default_factory=RenderSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)


@contextmanager
def local_model(uri: str) -> Iterator[str]:
    """A local path of the model file; a remote model's folder is copied to a temp dir first."""
    loc = open_location(uri)
    if loc.is_local:
        yield loc.root
        return
    folder = tempfile.mkdtemp(prefix="factory-model-")
    try:
        remote_dir = loc.root.rsplit("/", 1)[0]
        loc.fs.get(remote_dir + "/", folder + "/", recursive=True)
        yield os.path.join(folder, loc.root[len(remote_dir) + 1:])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def input_model(item: dict) -> ContextManager[str]:
    """The model file of a render input: extracted from its zip archive, or the file itself."""
    meta = item["meta"]
    if meta.get("archive"):
        return archive_model(item["uri"], meta.get("archive_member") or None)
    return local_model(item["uri"])


def image_rows(item: dict, result: ModelRender, settings: RenderSettings) -> list[dict]:
    """One shard row per rendered image: png + the render sample json of DESIGN.md."""
    rows = []
    for image in result.images:
        sample = image.sample
        meta = {
            "kind": "render",
            "model_id": item["input_id"],
            "model_name": result.model_name,
            "model_file": item["meta"].get("model_file", ""),
            "split": item["split"],
            **sample.metadata(),
            "image_index": sample.index,
            "face_bbox": [round(v, 2) for v in image.face_bbox],
            "head_bbox": [round(v, 2) for v in image.head_bbox],
            "engine": settings.engine,
            **settings.metadata(),  # samples (and, sampled adaptively, min_samples and the threshold)
            "targets": sorted(result.targets),
            "warnings": list(result.warnings),
            "missing_textures": list(result.missing_textures),  # as written in the PMX; drawn in diffuse colour
        }
        # encoded here: per-image dicts (morphs) differ in keys, which Arrow cannot hold in one column
        rows.append({"__key__": make_key(item["input_id"], f"{sample.index:04d}"), "png": image.png,
                     "json": json.dumps(meta).encode()})
    return rows


class BlenderRenderer:
    """Ray Data UDF (flat_map): a model input row -> its rendered image rows."""

    def __init__(self, config: RendererConfig) -> None:
        self.config = config
        self.process = BlenderProcess(config.worker)

    def _rows(self, item: dict) -> list[dict]:
        # an annotation override travels as JSON text: Ray Data would widen per-row dicts to one schema
        targets = item["meta"].get("targets_json")
        with input_model(item) as path:
            job = RenderJob(path, item["input_id"], self.config.sampling, self.config.settings,
                            json.loads(targets) if targets else None)
            result = self.process.call(RENDER_MODEL, job)
        return image_rows(item, result, self.config.settings)

    def __call__(self, item: dict) -> list[dict]:
        return rows_for_input(item, lambda: self._rows(item))
