"""Inputs -> manifest: one :class:`SourceEntry` per video, with a stable, dot-free id.

An input is a web URL (a video, playlist or channel, expanded by yt-dlp), a
local file path, an ``s3://`` URL, video shards (see
:mod:`factory.sources.video_shards`), or a text list file (``.txt``, ``.list``,
``.lst``; local or on S3) with one input per line. The kind of an input picks
its expander from a registry. An input that cannot be expanded becomes an
error entry (``entry.error`` set), never an exception, so one bad line does
not take the others down.

Ids are made by :mod:`factory.sources.entries`. Entries are deduplicated by id, first
occurrence wins, order preserved.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from yt_dlp.extractor import get_info_extractor

from factory.sources.ytdl import (
    CollectingLogger,
    DownloadSettings,
    SourceError,
    base_options,
    run_ytdl,
    with_retries,
)
from factory.sources.entries import SourceEntry, error_entry, file_id, split_object_url, web_id
from factory.sources.video_shards import expand_shards, is_shard_input
from factory.storage import StorageError, open_location

LIST_SUFFIXES = (".txt", ".list", ".lst")
_SCHEME_KINDS = {"http": "web", "https": "web", "s3": "s3", "file": "file"}
_MAX_NESTING = 3  # channel -> tab -> playlist is the deepest YouTube goes


# -- kinds of input -----------------------------------------------------------
def input_kind(text: str) -> str:
    """Which expander handles ``text``: list, shards, web, s3 or file."""
    if is_shard_input(text):
        return "shards"
    scheme = text.split("://", 1)[0].lower() if "://" in text else "file"
    if PurePosixPath(urlsplit(text).path).suffix.lower() in LIST_SUFFIXES and scheme in ("file", "s3"):
        return "list"
    return _SCHEME_KINDS.get(scheme, "unsupported")


@dataclass
class _Expansion:
    """State of one expand_inputs call: settings and the list files already read."""

    settings: DownloadSettings
    lists_seen: set[str]


Expander = Callable[[str, _Expansion], list[SourceEntry]]


def _local_path(text: str) -> str:
    return os.path.abspath(os.path.expanduser(text.removeprefix("file://")))


def _expand_file(text: str, ctx: _Expansion) -> list[SourceEntry]:
    path = _local_path(text)
    if not os.path.isfile(path):
        return [error_entry(path, "file", f"{path}: no such file", source=text)]
    entry = SourceEntry(video_id=file_id(path), url=path, kind="file", title=Path(path).stem, input=text)
    return [entry]


def _expand_s3(text: str, ctx: _Expansion) -> list[SourceEntry]:
    parent, name = split_object_url(text)
    try:
        found = open_location(parent).exists(name)
    except StorageError as exc:
        return [error_entry(text, "s3", str(exc))]
    if not found:
        return [error_entry(text, "s3", f"{text}: no such object")]
    return [SourceEntry(video_id=file_id(text), url=text, kind="s3", title=PurePosixPath(name).stem, input=text)]


def _read_list(text: str) -> tuple[str, str]:
    """A list file's content and the base its relative lines resolve against."""
    if text.startswith("s3://"):
        parent, name = split_object_url(text)
        return open_location(parent).read_bytes(name).decode("utf-8"), parent
    path = _local_path(text)
    return Path(path).read_text(encoding="utf-8"), os.path.dirname(path)


def list_lines(content: str) -> list[str]:
    """Inputs of a list file: stripped lines, without blanks and ``#`` comment lines."""
    lines = (line.strip() for line in content.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _resolve(line: str, base: str) -> str:
    """A list line as an input: URLs and absolute paths as is, relative paths against the list."""
    if "://" in line or os.path.isabs(os.path.expanduser(line)):
        return line
    return posixpath.join(base, line) if "://" in base else os.path.join(base, line)


def _expand_list(text: str, ctx: _Expansion) -> list[SourceEntry]:
    if text in ctx.lists_seen:
        return []  # a list that includes itself (or an ancestor) adds nothing new
    ctx.lists_seen.add(text)
    try:
        content, base = _read_list(text)
    except (OSError, UnicodeDecodeError, StorageError) as exc:
        return [error_entry(text, "list", f"{text}: cannot read list file ({type(exc).__name__}: {exc})")]
    entries: list[SourceEntry] = []
    for line in list_lines(content):
        entries.extend(_expand_one(_resolve(line, base), ctx))
    return entries


def _expand_shards(text: str, ctx: _Expansion) -> list[SourceEntry]:
    return expand_shards(text)


def _expand_unsupported(text: str, ctx: _Expansion) -> list[SourceEntry]:
    scheme = text.split("://", 1)[0]
    return [error_entry(text, "unsupported", f"{text}: unsupported input scheme '{scheme}://'")]


# -- web: yt-dlp ----------------------------------------------------------------
def _extract(url: str, settings: DownloadSettings) -> dict[str, Any]:
    """yt-dlp info for ``url`` without downloading; playlists stay flat (entries unresolved)."""
    options = base_options(settings, CollectingLogger()) | {"extract_flat": "in_playlist"}
    if settings.max_videos_per_url:
        options["playlistend"] = settings.max_videos_per_url
    return with_retries(lambda: run_ytdl(url, options, download=False), settings)


def _is_nested_playlist(info: dict[str, Any]) -> bool:
    """A flat entry that names an extractor which may return a playlist (e.g. a channel tab)."""
    ie_key, url = info.get("ie_key"), info.get("url")
    if info.get("_type") not in ("url", "url_transparent") or not ie_key or not url:
        return False
    try:
        extractor = get_info_extractor(ie_key)
    except KeyError:
        return False
    return extractor.is_single_video(url) is not True


def _video_entry(info: dict[str, Any], parent: dict[str, Any], text: str) -> SourceEntry:
    """An entry from a video's info: a full one, or a flat playlist entry (``_type`` url)."""
    flat = info.get("_type") in ("url", "url_transparent")
    # A flat entry is fetched through its own URL; a full one through its page, since
    # media URLs (e.g. YouTube's) expire.
    url = info.get("url") if flat else info.get("webpage_url") or info.get("original_url") or text
    key = info.get("extractor_key") or info.get("ie_key") or "generic"
    raw_id = str(info.get("id") or PurePosixPath(urlsplit(url).path).stem)
    duration = info.get("duration")
    return SourceEntry(
        video_id=web_id(raw_id, key, url),
        url=url,
        kind="web",
        title=info.get("title"),
        duration_s=float(duration) if duration is not None else None,
        uploader=info.get("uploader") or info.get("channel") or parent.get("uploader") or parent.get("channel"),
        webpage_url=info.get("webpage_url") or url,
        extractor=key.lower(),
        archive_id=f"{key.lower()} {info['id']}" if info.get("id") else None,
        input=text,
    )


def _flatten(info: dict[str, Any], text: str, ctx: _Expansion, depth: int = 0) -> list[SourceEntry]:
    """Videos of an info dict: itself, or its playlist entries (nested tabs resolved)."""
    if info.get("_type") not in ("playlist", "multi_video"):
        return [_video_entry(info, {}, text)]
    entries: list[SourceEntry] = []
    for child in info.get("entries") or ():
        if not child:
            continue  # yt-dlp leaves None for entries it could not list
        if _is_nested_playlist(child) and depth < _MAX_NESTING:
            entries.extend(_expand_web_url(child["url"], text, ctx, depth + 1))
        elif child.get("_type") in ("playlist", "multi_video"):
            entries.extend(_flatten(child, text, ctx, depth + 1))
        else:
            entries.append(_video_entry(child, info, text))
    return entries


def _expand_web_url(url: str, text: str, ctx: _Expansion, depth: int) -> list[SourceEntry]:
    try:
        info = _extract(url, ctx.settings)
    except SourceError as exc:
        return [error_entry(url, "web", str(exc), source=text)]
    return _flatten(info, text, ctx, depth)


def _expand_web(text: str, ctx: _Expansion) -> list[SourceEntry]:
    return _expand_web_url(text, text, ctx, 0)


EXPANDERS: dict[str, Expander] = {
    "list": _expand_list,
    "shards": _expand_shards,
    "web": _expand_web,
    "s3": _expand_s3,
    "file": _expand_file,
    "unsupported": _expand_unsupported,
}


def _expand_one(text: str, ctx: _Expansion) -> list[SourceEntry]:
    return EXPANDERS[input_kind(text)](text, ctx)


def _dedupe(entries: Iterable[SourceEntry]) -> list[SourceEntry]:
    seen: dict[str, SourceEntry] = {}
    for entry in entries:
        seen.setdefault(entry.video_id, entry)
    return list(seen.values())


def expand_inputs(inputs: str | Iterable[str], settings: DownloadSettings | None = None) -> list[SourceEntry]:
    """Expand inputs (URLs, paths, s3:// URLs, list files) into deduplicated entries, in order.

    ``settings`` supplies cookies, timeouts, request sleeps, retries and
    ``max_videos_per_url`` to yt-dlp. Failures are error entries.
    """
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    ctx = _Expansion(settings=settings or DownloadSettings(), lists_seen=set())
    entries: list[SourceEntry] = []
    for text in texts:
        entries.extend(_expand_one(text.strip(), ctx))
    return _dedupe(entries)

