"""The model store: trained models under one URL as ``{name}/{version}/``.

Each version folder holds the model's files (weights, config, label map),
``metrics.json`` and, written last, ``model.json``: the manifest that commits
the version (like a shard's stats file). Readers ask for ``name`` (the latest
committed version) or ``name@version``. The store URL is ``--model-store``, or
env ``FACTORY_MODEL_STORE``, or ``~/.cache/factory/models``; local or S3.
Remote versions are copied to a local cache before use (weights loaders want
a file path).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from factory.storage import Location, StorageConfig, open_location

MANIFEST = "model.json"
METRICS = "metrics.json"
DEFAULT_STORE = "~/.cache/factory/models"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


class ModelStoreError(ValueError):
    """A model reference cannot be resolved; the message says what exists."""


@dataclass(frozen=True)
class ModelRef:
    """``name`` or ``name@version`` as given by a user."""

    name: str
    version: int | None = None

    @classmethod
    def parse(cls, spec: str) -> "ModelRef":
        name, _, version = spec.partition("@")
        if not _NAME.match(name):
            raise ModelStoreError(f"model name {name!r} must be letters, digits, '-' or '_'")
        if version and not version.isdigit():
            raise ModelStoreError(f"model version in {spec!r} must be a whole number")
        return cls(name, int(version) if version else None)

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


@dataclass(frozen=True)
class StoredModel:
    """A committed model version, its files available under ``path`` on local disk."""

    ref: ModelRef
    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    def file(self, name: str) -> Path:
        """Local path of one of the model's files."""
        path = self.path / name
        if not path.is_file():
            raise ModelStoreError(f"model {self.ref} has no file {name!r}")
        return path

    @property
    def metrics(self) -> dict[str, Any]:
        return json.loads(self.file(METRICS).read_text())


def default_store_url() -> str:
    """The store URL from FACTORY_MODEL_STORE, else the per-user cache folder."""
    return os.environ.get("FACTORY_MODEL_STORE") or DEFAULT_STORE


class ModelStore:
    """Publish and resolve model versions under a storage URL."""

    def __init__(self, url: str | None = None, storage: StorageConfig | None = None) -> None:
        self.loc: Location = open_location(url or default_store_url(), storage)

    def versions(self, name: str) -> list[int]:
        """Committed versions of ``name``, ascending."""
        found = []
        try:
            entries = self.loc.fs.ls(self.loc.path(name), detail=False)
        except FileNotFoundError:
            return []
        for entry in entries:
            tail = entry.rstrip("/").rsplit("/", 1)[-1]
            if tail.isdigit() and self.loc.exists(f"{name}/{tail}/{MANIFEST}"):
                found.append(int(tail))
        return sorted(found)

    def names(self) -> list[str]:
        """Names with at least one committed version."""
        try:
            entries = self.loc.fs.ls(self.loc.root, detail=False)
        except FileNotFoundError:
            return []
        names = sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in entries)
        return [n for n in names if _NAME.match(n) and self.versions(n)]

    def resolve(self, spec: str | ModelRef) -> ModelRef:
        """Pin ``name`` to its latest committed version; check ``name@version`` exists."""
        ref = spec if isinstance(spec, ModelRef) else ModelRef.parse(spec)
        versions = self.versions(ref.name)
        if not versions:
            known = ", ".join(self.names()) or "none"
            raise ModelStoreError(f"no model '{ref.name}' in {self.loc.url} (models there: {known})")
        if ref.version is None:
            return ModelRef(ref.name, versions[-1])
        if ref.version not in versions:
            raise ModelStoreError(f"model '{ref.name}' has no version {ref.version} (versions: {versions})")
        return ref

    def publish(
        self,
        name: str,
        files: dict[str, Path | bytes],
        metrics: dict[str, Any],
        manifest: dict[str, Any],
    ) -> ModelRef:
        """Store a new version of ``name``; returns its ref. ``model.json`` is written last.

        ``manifest`` should carry the config, the label map and the data the
        model was trained on (dataset URL and its shard commit).
        """
        ref = ModelRef.parse(name)
        version = self._claim_version(ref.name)
        folder = f"{ref.name}/{version}"
        for file_name, content in sorted(files.items()):
            data = content if isinstance(content, bytes) else Path(content).read_bytes()
            self.loc.put_bytes(f"{folder}/{file_name}", data)
        self.loc.put_bytes(f"{folder}/{METRICS}", json.dumps(metrics, indent=1, sort_keys=True).encode())
        body = {**manifest, "name": ref.name, "version": version, "files": sorted(files), "created_unix": time.time()}
        self.loc.put_bytes(f"{folder}/{MANIFEST}", json.dumps(body, indent=1, sort_keys=True, default=str).encode())
        return ModelRef(ref.name, version)

    def _claim_version(self, name: str) -> int:
        """The next version number. Locally the folder is created atomically, so
        two trainers publishing at once get different numbers; on S3 (no atomic
        create) publish one version of a name at a time."""
        version = (self.versions(name) or [0])[-1] + 1
        if not self.loc.is_local:
            return version
        while True:
            try:
                os.makedirs(self.loc.path(name), exist_ok=True)
                os.mkdir(self.loc.path(name, str(version)))
                return version
            except FileExistsError:
                version += 1

    def fetch(self, spec: str | ModelRef, cache_dir: str | None = None) -> StoredModel:
        """Resolve ``spec`` and make its files available on local disk."""
        ref = self.resolve(spec)
        folder = f"{ref.name}/{ref.version}"
        manifest = json.loads(self.loc.read_bytes(f"{folder}/{MANIFEST}"))
        if self.loc.is_local:
            return StoredModel(ref, Path(self.loc.path(folder)), manifest)
        cache = Path(cache_dir or os.path.expanduser("~/.cache/factory/model-cache"))
        local = cache / self.loc.root.replace("/", "_") / ref.name / str(ref.version)
        if not (local / MANIFEST).is_file():
            local.mkdir(parents=True, exist_ok=True)
            for name in [*manifest.get("files", []), METRICS, MANIFEST]:  # manifest last: marks the copy complete
                if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
                    raise ModelStoreError(f"model {ref} lists {name!r}, not a plain file name; refusing to copy it")
                (local / name).write_bytes(self.loc.read_bytes(f"{folder}/{name}"))
        return StoredModel(ref, local, manifest)


# Models the factory trained with its own recipes and ships in the package (no
# download): a ModelStore folder inside factory/, read only. factory/shipped/README.md
# gives the command that made each one.
SHIPPED_STORE = Path(__file__).resolve().parent / "shipped"


def install_shipped(name: str, store_url: str | None = None) -> ModelRef:
    """Publish the shipped model ``name`` as a new version in the store; returns its ref."""
    shipped = ModelStore(str(SHIPPED_STORE))
    if not shipped.versions(name):
        raise ModelStoreError(f"no shipped model {name!r}; shipped: {', '.join(shipped.names()) or 'none'}")
    model = shipped.fetch(name)
    files = {f: model.file(f) for f in model.manifest["files"]}
    manifest = {k: v for k, v in model.manifest.items() if k not in ("name", "version", "files", "created_unix")}
    manifest["shipped_from"] = str(model.ref)
    return ModelStore(store_url).publish(name, files, model.metrics, manifest)
