"""Video shards as inputs: WebDataset tars of videos, read member by member.

A shard input is a ``.tar`` path or URL, a brace pattern
(``videos-{000000..000099}.tar``), a folder of ``.tar`` files, or a dataset
written by ``factory download`` (its committed shards only). Expansion reads
tar headers only (the file is seekable, so tarfile seeks over the data) plus
each sample's small ``json`` member, and gives one :class:`SourceEntry` per
video member with its byte range. Fetching copies just that range to a local
file: a task never reads a whole shard.

Both layouts work: ``factory download``'s (``shards/all-000000.tar`` with
``{id}.mp4`` + ``{id}.json`` under a dataset) and video2dataset's
(``00000.tar`` with ``000000000.mp4``, ``.json``, ``.txt``). The id of a video
is its json's ``id`` when present, else ``{key}_{hash}`` of shard URL + key.
A sample's ``txt`` is its caption (``SourceEntry.caption``, the mined
samples' ``json.caption``). A video2dataset sample whose download failed
(json ``status`` not ``success``, no video member) is an error entry with its
URL and status, so it ends as one error row, not silently dropped.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import urlsplit

from braceexpand import braceexpand

from factory.dataset import DATASET_JSON
from factory.shards import committed_shard_urls
from factory.sources.entries import (
    SourceEntry,
    error_entry,
    safe_id,
    short_hash,
    split_object_url,
)
from factory.sources.ytdl import SourceError
from factory.storage import StorageError, open_location

VIDEO_EXTS = ("mp4", "mkv", "webm", "mov", "m4v", "flv", "avi", "ts")
_READ_BLOCK = 1 << 16  # small reads: expansion touches headers, not payloads
_LIST_THREADS = 16
_MAX_JSON = 1 << 20  # a sample's json larger than this is not metadata; it is skipped


def is_shard_input(text: str) -> bool:
    """Whether an input names video shards (a .tar, a brace pattern or a folder)."""
    if "{" in text and ".." in text or text.lower().endswith(".tar"):
        return True
    if "://" not in text or text.startswith("file://"):
        return Path(text.removeprefix("file://")).expanduser().is_dir()
    # An S3 prefix (no file suffix) is a folder of shards or a download OUT.
    return text.startswith("s3://") and (text.endswith("/") or not PurePosixPath(urlsplit(text).path).suffix)


def shard_urls(text: str) -> list[str]:
    """The shard files an input names: brace-expanded, a folder listed, a dataset's committed shards."""
    if text.lower().endswith(".tar") or "{" in text:
        return list(braceexpand(text))
    loc = open_location(text)
    if loc.exists(DATASET_JSON):
        return committed_shard_urls(loc)
    return [loc.url_of(name) for name in loc.list() if name.lower().endswith(".tar")]


def _open(url: str) -> IO[bytes]:
    parent, name = split_object_url(url)
    loc = open_location(parent)
    try:
        return loc.fs.open(loc.path(name), "rb", block_size=_READ_BLOCK)
    except FileNotFoundError:
        raise SourceError(f"{url}: no such shard") from None


def _split_name(member: str) -> tuple[str, str]:
    """WebDataset's rule: the key is the name up to the first dot of its base name."""
    folder, base = posixpath.split(member)
    stem, _, ext = base.partition(".")
    return posixpath.join(folder, stem), ext.lower()


def _members(url: str) -> dict[str, dict[str, tarfile.TarInfo]]:
    """Members of one shard grouped by sample key, from the headers alone."""
    samples: dict[str, dict[str, tarfile.TarInfo]] = {}
    with _open(url) as fh, tarfile.open(fileobj=fh, mode="r:") as tar:
        for info in tar:
            if info.isfile():
                key, ext = _split_name(info.name)
                samples.setdefault(key, {})[ext] = info
    return samples


def _read_range(fh: IO[bytes], offset: int, size: int) -> bytes:
    fh.seek(offset)
    return fh.read(size)


def _entry(
    url: str, text: str, key: str, video: tarfile.TarInfo | None, meta: dict[str, Any], caption: str | None
) -> SourceEntry:
    """The entry of one sample; one without a video member is an error entry naming its status."""
    # The json's id and the member key are input data: made safe before they name a key or a file.
    raw_id = meta.get("id")
    video_id = safe_id(str(raw_id)) if raw_id else f"{safe_id(Path(key).name)}_{short_hash(url + '#' + key)}"
    source = meta.get("source") or {}
    duration = meta.get("duration")
    error = None
    if video is None:  # video2dataset keeps a failed download as json (+ txt) with its status
        status, message = meta.get("status") or "no video member", meta.get("error_message")
        error = f"{url}: sample {key} ({meta.get('url') or 'no url'}): {status}" + (f": {message}" if message else "")
    return SourceEntry(
        video_id=video_id,
        url=url,
        kind="shard",
        title=meta.get("title") or source.get("title"),
        duration_s=float(duration) if duration is not None else None,
        uploader=meta.get("uploader") or source.get("uploader"),
        webpage_url=meta.get("url") or source.get("webpage_url"),
        extractor=source.get("extractor"),
        input=text,
        error=error.splitlines()[0] if error else None,
        caption=caption,
        source_key=key,
        member_offset=video.offset_data if video is not None else None,
        member_size=video.size if video is not None else None,
        member_ext=_split_name(video.name)[1] if video is not None else None,
    )


def _small_member(fh: IO[bytes], info: tarfile.TarInfo | None) -> bytes | None:
    """A metadata member's bytes (json, txt); None when absent or too large to be metadata."""
    if info is None or info.size > _MAX_JSON:
        return None
    return _read_range(fh, info.offset_data, info.size)


def _shard_entries(url: str, text: str) -> list[SourceEntry]:
    try:
        samples = _members(url)
        entries = []
        with _open(url) as fh:
            for key, members in samples.items():
                video = next((members[e] for e in VIDEO_EXTS if e in members), None)
                if video is None and "json" not in members:
                    continue  # no video and no json (e.g. an error row's leftovers): not an input
                raw = _small_member(fh, members.get("json"))
                try:
                    meta = json.loads(raw) if raw else {}
                except ValueError:
                    meta = {}
                meta = meta if isinstance(meta, dict) else {}
                if video is None and meta.get("status") in (None, "success"):
                    continue  # no video and no failed download recorded: not an input
                text_bytes = _small_member(fh, members.get("txt"))  # video2dataset's caption
                caption = text_bytes.decode("utf-8", "replace") if text_bytes else None
                entries.append(_entry(url, text, key, video, meta, caption))
        return entries
    except (tarfile.TarError, OSError, StorageError, SourceError) as exc:
        return [error_entry(url, "shard", f"{url}: unreadable shard ({type(exc).__name__}: {exc})".splitlines()[0], source=text)]


def expand_shards(text: str) -> list[SourceEntry]:
    """One entry per video member of the shards ``text`` names; unreadable shards become error entries."""
    try:
        urls = shard_urls(text)
    except StorageError as exc:
        return [error_entry(text, "shard", str(exc))]
    if not urls:
        return [error_entry(text, "shard", f"{text}: no .tar shards found")]
    # Shards are listed in parallel: on S3 each video costs a ranged GET or two, mostly waiting.
    with ThreadPoolExecutor(max_workers=min(_LIST_THREADS, len(urls))) as pool:
        return [entry for entries in pool.map(lambda url: _shard_entries(url, text), urls) for entry in entries]


def fetch_member(entry: SourceEntry, workdir: Path) -> Path:
    """Copy one video member's byte range out of its shard into ``workdir``."""
    if entry.member_offset is None or entry.member_size is None:
        raise SourceError(f"{entry.url}: shard entry {entry.source_key} has no byte range")
    # Named by a hash we make, never by the shard's id, key or member name.
    ext = entry.member_ext if entry.member_ext in VIDEO_EXTS else "mp4"
    target = workdir / f"member-{short_hash(f'{entry.url}#{entry.source_key}')}.{ext}"
    partial = workdir / f".{uuid.uuid4().hex}.part"
    try:
        with _open(entry.url) as src, partial.open("wb") as dst:
            src.seek(entry.member_offset)
            copied = _copy_exact(src, dst, entry.member_size)
        if copied != entry.member_size:
            raise SourceError(f"{entry.url}: member {entry.source_key} truncated ({copied} of {entry.member_size} bytes)")
        partial.rename(target)
    except (StorageError, OSError) as exc:
        raise SourceError(f"{entry.url}: {exc}".splitlines()[0]) from None
    finally:
        partial.unlink(missing_ok=True)
    return target


def _copy_exact(src: IO[bytes], dst: IO[bytes], size: int) -> int:
    copied = 0
    while copied < size and (chunk := src.read(min(1 << 20, size - copied))):
        dst.write(chunk)
        copied += len(chunk)
    return copied
