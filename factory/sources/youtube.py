"""The video source: expand inputs into a manifest, then fetch each entry to a local file.

Public API (no Ray here; pipelines call these from their tasks)::

    entries = expand_inputs(["https://www.youtube.com/@channel", "list.txt"], settings)
    path = download(entry, settings, workdir)   # raises SourceError, one line
    info = format_info(path)                    # bytes and the format yt-dlp chose

Web entries go through yt-dlp (best video up to ``max_height`` + best audio,
merged to mp4 by ffmpeg), local files pass through, ``s3://`` objects are
copied into ``workdir``, a video inside a tar shard has its byte range
copied into ``workdir``. A web download writes ``{video_id}.{ext}`` and a
``{video_id}.format.json`` sidecar in ``workdir``; with a download archive,
an entry whose id is archived and whose file is in ``workdir`` is returned
without touching the network.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from factory.sources.entries import SourceEntry, safe_id, split_object_url
from factory.sources.manifest import expand_inputs
from factory.sources.ytdl import (
    CollectingLogger,
    DownloadSettings,
    SourceError,
    base_options,
    run_ytdl,
    with_retries,
)
from factory.sources.video_shards import VIDEO_EXTS, fetch_member
from factory.storage import StorageError, open_location

__all__ = [
    "DownloadSettings",
    "SourceEntry",
    "SourceError",
    "download",
    "expand_inputs",
    "fetched",
    "format_info",
]

SIDECAR_SUFFIX = ".format.json"
_SUFFIX = re.compile(r"\.[a-z0-9]{1,8}")  # a file suffix taken from a URL is kept only when plain
# What yt-dlp logs when it skips a download without raising, and what we tell the user.
_SKIP_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"larger than max-filesize \((\d+) bytes > (\d+) bytes\)"), "larger than max_filesize ({0} > {1} bytes)"),
    (re.compile(r"has already been recorded in the archive"), "in the download archive, but not in workdir"),
)
# Fields of yt-dlp's info dict kept in the sidecar: what the chosen format is.
_FORMAT_FIELDS = (
    "id", "extractor_key", "webpage_url", "format_id", "format", "ext", "width", "height", "fps",
    "vcodec", "acodec", "tbr", "filesize", "filesize_approx", "duration",
)  # fmt: skip


def _existing(workdir: Path, video_id: str) -> Path | None:
    """A finished download of ``video_id`` in workdir (never a .part or an unmerged stream)."""
    for ext in VIDEO_EXTS:
        path = workdir / f"{video_id}.{ext}"
        if path.is_file():
            return path
    return None


def _archived(settings: DownloadSettings, entry: SourceEntry) -> bool:
    """Whether the download archive lists the entry's yt-dlp id."""
    if not settings.archive_file or not entry.archive_id:
        return False
    archive = Path(settings.archive_file).expanduser()
    if not archive.is_file():
        return False
    with archive.open(encoding="utf-8") as fh:
        return any(line.strip() == entry.archive_id for line in fh)


def _download_options(settings: DownloadSettings, workdir: Path, entry: SourceEntry, logger: CollectingLogger) -> dict:
    options = base_options(settings, logger) | {
        # The folder goes in "paths", not the template, so a "%" in it is not read as a field.
        "paths": {"home": str(workdir)},
        "outtmpl": {"default": f"{entry.video_id}.%(ext)s"},
        "noplaylist": True,
        "playlist_items": "1",  # a page with several videos yields the first; expansion lists the rest
        "sleep_interval": settings.sleep_download_s,
        "max_filesize": settings.max_filesize,
    }
    # An archived id whose file is gone is fetched again; yt-dlp alone would skip it.
    if settings.archive_file and not _archived(settings, entry):
        options["download_archive"] = str(Path(settings.archive_file).expanduser())
    return options


def _skip_reason(logger: CollectingLogger) -> str:
    for pattern, reason in _SKIP_REASONS:
        if found := logger.find(pattern):
            return reason.format(*found.groups())
    return "yt-dlp wrote no file"


def _write_sidecar(path: Path, info: dict[str, Any]) -> None:
    chosen = {k: info.get(k) for k in _FORMAT_FIELDS}
    path.with_name(path.stem + SIDECAR_SUFFIX).write_text(json.dumps(chosen, sort_keys=True), encoding="utf-8")


def _checked_id(entry: SourceEntry) -> str:
    """The entry's id, fit to name a file in workdir; an id that is not refuses the fetch."""
    if safe_id(entry.video_id) != entry.video_id:
        raise SourceError(f"{entry.url}: video id {entry.video_id!r} is not safe as a file name")
    return entry.video_id


def _inside(path: Path, workdir: Path, url: str) -> Path:
    """``path`` if it lies in workdir; yt-dlp reports where it wrote, and that must be here."""
    if workdir.resolve() not in path.resolve().parents:
        raise SourceError(f"{url}: yt-dlp wrote outside the work folder ({path.name})")
    return path


def _fetch_web(entry: SourceEntry, settings: DownloadSettings, workdir: Path) -> Path:
    _checked_id(entry)
    if (done := _existing(workdir, entry.video_id)) and _archived(settings, entry):
        return done
    logger = CollectingLogger()
    options = _download_options(settings, workdir, entry, logger)
    info = with_retries(lambda: run_ytdl(entry.url, options, download=True), settings)
    files = [d.get("filepath") for d in info.get("requested_downloads") or () if d.get("filepath")]
    path = Path(files[0]) if files else _existing(workdir, entry.video_id)
    if path is None or not path.is_file():
        raise SourceError(f"{entry.url}: {_skip_reason(logger)}")
    _inside(path, workdir, entry.url)
    if files:
        _write_sidecar(path, info)
    return path


def _fetch_file(entry: SourceEntry, settings: DownloadSettings, workdir: Path) -> Path:
    path = Path(entry.url)
    if not path.is_file():
        raise SourceError(f"{entry.url}: no such file")
    return path


def _fetch_s3(entry: SourceEntry, settings: DownloadSettings, workdir: Path) -> Path:
    parent, name = split_object_url(entry.url)
    suffix = Path(name).suffix.lower()
    target = workdir / f"{_checked_id(entry)}{suffix if _SUFFIX.fullmatch(suffix) else ''}"
    partial = workdir / f".{uuid.uuid4().hex}.part"
    try:
        with open_location(parent).open_read(name) as src, partial.open("wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        os.replace(partial, target)
    except FileNotFoundError:
        raise SourceError(f"{entry.url}: no such object") from None
    except (StorageError, OSError) as exc:
        raise SourceError(f"{entry.url}: {exc}".splitlines()[0]) from None
    finally:
        partial.unlink(missing_ok=True)
    return target


def _fetch_shard(entry: SourceEntry, settings: DownloadSettings, workdir: Path) -> Path:
    return fetch_member(entry, workdir)


Fetcher = Callable[[SourceEntry, DownloadSettings, Path], Path]
FETCHERS: dict[str, Fetcher] = {"web": _fetch_web, "file": _fetch_file, "s3": _fetch_s3, "shard": _fetch_shard}


def download(entry: SourceEntry, settings: DownloadSettings | None, workdir: str | os.PathLike[str]) -> Path:
    """Fetch one entry to a local file and return its path.

    Web videos land in ``workdir`` as ``{video_id}.{ext}``, S3 objects as
    ``{video_id}{suffix}``; local files are returned where they are. Raises
    :class:`SourceError` (one line) for an error entry or a failed fetch,
    after retrying transient failures with back-off.
    """
    if entry.error:
        raise SourceError(entry.error)
    fetch = FETCHERS.get(entry.kind)
    if fetch is None:
        raise SourceError(f"{entry.url}: cannot download an input of kind '{entry.kind}'")
    folder = Path(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    return fetch(entry, settings or DownloadSettings(), folder)


def format_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Size on disk and, for web downloads, the format yt-dlp chose (from the sidecar).

    Always has ``bytes`` and ``ext``; web downloads add ``format_id``,
    ``format``, ``width``, ``height``, ``fps``, ``vcodec``, ``acodec``, ``tbr``,
    ``filesize`` / ``filesize_approx`` (yt-dlp's estimate), ``extractor_key``,
    ``webpage_url``, ``id`` and ``duration`` where yt-dlp knew them.
    """
    path = Path(path)
    sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
    info: dict[str, Any] = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else {}
    return info | {"bytes": path.stat().st_size, "ext": path.suffix.lstrip(".").lower()}


@contextmanager
def fetched(entry: SourceEntry, settings: DownloadSettings | None = None) -> Iterator[Path]:
    """The entry as a local file for the length of the block; fetched copies are removed after."""
    workdir = Path(tempfile.mkdtemp(prefix="factory-input-"))
    try:
        yield download(entry, settings, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

