"""Zip archives of MMD models, opened as untrusted input.

Model sites ship one or several models per zip, often with Shift-JIS file
names (no UTF-8 flag). Extraction goes into a caller's temp folder only:
absolute names, drive letters, ``..`` components and symlinks are refused,
and limits on file count, declared size, actual size and compression ratio
stop zip bombs (sizes in the directory can lie, so bytes are counted while
they are written).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from factory.shards import make_key
from factory.storage import StorageError, open_location

MODEL_SUFFIXES = (".pmx", ".pmd")
_UTF8_FLAG = 0x800
_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 1 << 20


class ArchiveError(ValueError):
    """An archive is unsafe or unreadable; one line naming the archive and the entry."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what one archive may unpack to."""

    max_files: int = 5_000
    max_total_bytes: int = 4 << 30
    max_file_bytes: int = 1 << 30
    max_ratio: float = 200.0  # uncompressed / compressed, per entry


def decode_name(info: zipfile.ZipInfo) -> str:
    """The entry's real name: UTF-8 when flagged, else Shift-JIS (cp932) when it decodes.

    zipfile decodes unflagged names as cp437; the original bytes come back by
    encoding with cp437.
    """
    if info.flag_bits & _UTF8_FLAG:
        return info.filename
    raw = info.filename.encode("cp437", errors="replace")
    try:
        return raw.decode("cp932")
    except UnicodeDecodeError:
        return info.filename


def safe_member_path(name: str) -> PurePosixPath:
    """A relative path with no escape; raises ArchiveError otherwise."""
    text = name.replace("\\", "/")
    if text.startswith("/") or _DRIVE.match(text):
        raise ArchiveError(f"absolute path {name!r}")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ArchiveError(f"path escapes the folder: {name!r}")
    if not parts:
        raise ArchiveError(f"empty entry name {name!r}")
    return PurePosixPath(*parts)


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _check_entries(infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> None:
    if len(infos) > limits.max_files:
        raise ArchiveError(f"{len(infos)} entries (limit {limits.max_files})")
    total = 0
    for info in infos:
        name = decode_name(info)
        if _is_symlink(info):
            raise ArchiveError(f"symlink entry {name!r}")
        safe_member_path(name)
        if info.file_size > limits.max_file_bytes:
            raise ArchiveError(f"entry {name!r} claims {info.file_size} bytes (limit {limits.max_file_bytes})")
        if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
            raise ArchiveError(f"entry {name!r} compresses {info.file_size / info.compress_size:.0f}:1 (limit {limits.max_ratio:.0f}:1)")
        total += info.file_size
    if total > limits.max_total_bytes:
        raise ArchiveError(f"entries claim {total} bytes in all (limit {limits.max_total_bytes})")


def _copy_bounded(src, dst, budget: int, name: str) -> int:
    written = 0
    while chunk := src.read(_CHUNK):
        written += len(chunk)
        if written > budget:
            raise ArchiveError(f"entry {name!r} unpacks past its size limit")
        dst.write(chunk)
    return written


def extract_archive(archive: str | os.PathLike[str], dest: str | os.PathLike[str], limits: ArchiveLimits = ArchiveLimits()) -> list[Path]:
    """Unpack ``archive`` into ``dest`` safely; returns the model files found (.pmx/.pmd).

    Every entry is checked before anything is written; a bad archive raises
    :class:`ArchiveError` and leaves nothing outside ``dest``.
    """
    dest = Path(dest).resolve()
    label = Path(archive).name
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            _check_entries(infos, limits)
            remaining = limits.max_total_bytes
            models = []
            for info in infos:
                rel = safe_member_path(decode_name(info))
                target = dest.joinpath(*rel.parts)
                if dest not in target.resolve().parents:
                    raise ArchiveError(f"path escapes the folder: {rel}")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    remaining -= _copy_bounded(src, dst, min(limits.max_file_bytes, remaining), str(rel))
                if target.suffix.lower() in MODEL_SUFFIXES:
                    models.append(target)
    except ArchiveError as exc:
        raise ArchiveError(f"unsafe archive {label}: {exc}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise ArchiveError(f"unreadable archive {label}: {exc}") from None
    return sorted(models)


def model_id(archive_uri: str, inner_path: str) -> str:
    """Stable, dot-free id of one model inside one archive."""
    stem = posixpath.splitext(posixpath.basename(inner_path.replace("\\", "/")))[0] or "model"
    digest = hashlib.blake2b(f"{archive_uri}!{inner_path}".encode(), digest_size=4).hexdigest()
    return make_key(stem[:40], digest)


def _split(uri: str) -> tuple[str, str]:
    parent, name = posixpath.split(uri.rstrip("/"))
    return parent or ".", name


def archive_models(archive_uri: str) -> list[str]:
    """Names of the .pmx/.pmd files inside a zip (local or s3://), from its central directory only.

    Nothing is extracted; a remote archive is read by range (the directory
    sits at its end). Raises :class:`ArchiveError` for a file that is no zip.
    """
    parent, name = _split(archive_uri)
    loc = open_location(parent)
    try:
        with loc.fs.open(loc.path(name), "rb", block_size=1 << 16) as fh, zipfile.ZipFile(fh) as zf:
            names = [decode_name(i) for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, StorageError) as exc:
        raise ArchiveError(f"unreadable archive {name}: {exc}") from None
    return sorted(n for n in names if n.lower().endswith(MODEL_SUFFIXES))


@contextmanager
def archive_model(archive_uri: str, member: str | None, limits: ArchiveLimits = ArchiveLimits()) -> Iterator[str]:
    """One model of an archive as a local path, for the length of the block.

    The archive (copied first when remote) is extracted whole into a fresh
    temp folder, so the model finds its textures; the folder is removed
    after. ``member`` None (an archive whose listing found no model) raises
    the archive's own error, or says it holds no model.
    """
    folder = Path(tempfile.mkdtemp(prefix="factory-archive-")).resolve()
    try:
        parent, name = _split(archive_uri)
        loc = open_location(parent)
        local = Path(loc.path(name)) if loc.is_local else folder / name
        if not loc.is_local:
            loc.fs.get(loc.path(name), str(local))
        found = extract_archive(local, folder / "files", limits)
        wanted = folder / "files" / Path(*safe_member_path(member).parts) if member else None
        if wanted is None or wanted not in found:
            raise ArchiveError(f"archive {name} holds no model {member!r}" if member else f"archive {name} holds no .pmx/.pmd model")
        yield str(wanted)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
