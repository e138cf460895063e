"""Inputs -> manifest: one :class:`SourceEntry` per video, with a stable, dot-free id.

An input is a web URL (a video, playlist or channel, expanded by yt-dlp), a
local file path, an ``s3://`` URL, video shards (see
:mod:`factory.sources.video_shards`), or a text list file (``.txt``, ``.list``,
``.lst``; local or on S3) with one input per line. The kind of an input picks
its expander from a registry. An input that cannot be expanded becomes an
error entry (``entry.error`` set), never an exception, so one bad line does
not take the others down.

Ids:

- YouTube: yt-dlp's video id as is (``dQw4w9WgXcQ``); one that starts with
  ``-`` or ``_`` gets a ``yt`` prefix (``yt-abc...``) because sample keys must
  start with a letter or digit.
- Other sites: ``{extractor}_{id}``. The generic extractor names a video after
  its file name, which is not unique across sites, so its ids also carry a
  hash of the URL: ``generic_{name}_{hash}``.
- Local and S3 files: ``{stem}_{hash}``, the hash taken over the absolute path
  or the URL.

``hash`` is 10 hex digits of blake2b. Entries are deduplicated by id, first
occurrence wins, order preserved.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
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
from factory.storage import StorageError, open_location

LIST_SUFFIXES = (".txt", ".list", ".lst")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_MAX_ID = 60
# Extractors whose ids come from the URL's file name, so two sites can share one.
_URL_NAMED_EXTRACTORS = frozenset({"generic", "html5mediaembed"})
_SCHEME_KINDS = {"http": "web", "https": "web", "s3": "s3", "file": "file"}
_MAX_NESTING = 3  # channel -> tab -> playlist is the deepest YouTube goes


@dataclass(frozen=True)
class SourceEntry:
    """One video to fetch, or one input that failed to expand (``error`` set)."""

    video_id: str
    url: str  # what download() fetches: a web page URL, a local path or an s3:// URL
    kind: str  # "web", "file" or "s3": picks the fetcher in download()
    title: str | None = None
    duration_s: float | None = None
    uploader: str | None = None
    webpage_url: str | None = None
    extractor: str | None = None
    archive_id: str | None = None  # the line yt-dlp writes to a download archive, when known
    input: str = ""  # the input (list line, URL, path) this entry came from
    error: str | None = None
    caption: str | None = None  # a shard sample's txt (video2dataset's caption)
    # A video inside a tar shard (kind "shard"; ``url`` is the shard): its key and byte range.
    source_key: str | None = None
    member_offset: int | None = None
    member_size: int | None = None
    member_ext: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-able), e.g. for ``InputItem.meta`` or a shard's json."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceEntry:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# -- ids ----------------------------------------------------------------------
def short_hash(text: str) -> str:
    """10 hex digits of blake2b over ``text``."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=5).hexdigest()


def _clean(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("_-")


def safe_id(raw: str) -> str:
    """``raw`` as is when it is already a safe, short id; else cleaned + a hash of it.

    Ids name sample keys and, for web downloads, files in a work folder, so an
    id taken from input data (a shard's json, yt-dlp's metadata) never keeps a
    slash, a dot or a leading dash: ``../../etc/x`` becomes ``etc_x_<hash>``.
    """
    if _SAFE_ID.fullmatch(raw):
        return raw
    return f"{_clean(raw)[:_MAX_ID] or 'video'}_{short_hash(raw)}"


def file_id(location: str) -> str:
    """Id of a local file or object URL: cleaned stem + hash of the full location."""
    stem = _clean(PurePosixPath(urlsplit(location).path if "://" in location else location).stem)
    return f"{stem or 'file'}_{short_hash(location)}"


def web_id(raw_id: str, extractor_key: str, url: str) -> str:
    """Id of a video found by yt-dlp (see the module docstring)."""
    extractor = _clean(extractor_key.lower())
    if extractor == "youtube":
        # 11 characters of [A-Za-z0-9_-]; only the first may be "-" or "_" (the last encodes 4 bits).
        return safe_id(raw_id if raw_id[:1].isalnum() else f"yt{raw_id}")
    name = _clean(raw_id) or "video"
    if extractor in _URL_NAMED_EXTRACTORS:
        return f"{extractor}_{name}_{short_hash(url)}"
    return f"{extractor}_{name}"


def error_entry(location: str, kind: str, message: str, source: str | None = None) -> SourceEntry:
    """An entry for a location that failed, with a stable id; ``source`` is the input it came from."""
    return SourceEntry(video_id=file_id(location), url=location, kind=kind, input=source or location, error=message)


# -- kinds of input -----------------------------------------------------------
def input_kind(text: str) -> str:
    """Which expander handles ``text``: list, shards, web, s3 or file."""
    from factory.sources.video_shards import is_shard_input  # imports this module

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


def split_object_url(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b.mp4`` -> ``("s3://bucket/a", "b.mp4")``: a location and a name in it."""
    parent, name = posixpath.split(url.rstrip("/"))
    return parent, name


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
    from factory.sources.video_shards import expand_shards

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

