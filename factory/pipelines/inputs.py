"""Pipeline inputs from the video source's manifest."""

from __future__ import annotations

from factory.rows import InputItem
from factory.sources.youtube import DownloadSettings, SourceEntry, expand_inputs


def video_items(inputs: str | list[str], settings: DownloadSettings | None = None) -> list[InputItem]:
    """Expand video inputs (URLs, files, s3://, list files) into pipeline inputs.

    One item per video, its manifest entry in ``meta``; a video inside a
    shard keeps its original URL as ``uri`` when the shard's json names it. Entries that failed to
    expand stay in the list: fetching them raises the expansion error, which
    the pipeline records as that input's error row.
    """
    return [InputItem(input_id=e.video_id, uri=_origin(e), meta=e.to_dict()) for e in expand_inputs(inputs, settings)]


def _origin(entry: SourceEntry) -> str:
    """Where a video came from: a shard member's original URL (from its json) when known."""
    return entry.webpage_url or entry.url if entry.kind == "shard" else entry.url
