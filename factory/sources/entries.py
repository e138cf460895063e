"""What a source expands to: :class:`SourceEntry` records and their stable, dot-free ids.

Both the manifest (web URLs, files, lists) and video shards make entries, so
the record and its ids live here, below both.

Ids:

- YouTube: yt-dlp's video id as is (``dQw4w9WgXcQ``); one that starts with
  ``-`` or ``_`` gets a ``yt`` prefix (``yt-abc...``) because sample keys must
  start with a letter or digit.
- Other sites: ``{extractor}_{id}``. The generic extractor names a video after
  its file name, which is not unique across sites, so its ids also carry a
  hash of the URL: ``generic_{name}_{hash}``.
- Local and S3 files: ``{stem}_{hash}``, the hash taken over the absolute path
  or the URL.

``hash`` is 10 hex digits of blake2b. Ids taken from input data (a shard's
json, yt-dlp's metadata) go through :func:`safe_id`: never a slash, a dot or
a leading dash.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import asdict, dataclass, fields
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_MAX_ID = 60
# Extractors whose ids come from the URL's file name, so two sites can share one.
_URL_NAMED_EXTRACTORS = frozenset({"generic", "html5mediaembed"})


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


def split_object_url(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b.mp4`` -> ``("s3://bucket/a", "b.mp4")``: a location and a name in it."""
    parent, name = posixpath.split(url.rstrip("/"))
    return parent, name
