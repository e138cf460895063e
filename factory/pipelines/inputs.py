"""Pipeline inputs from the video source's manifest."""

from __future__ import annotations

from factory.pipelines.runner import InputItem
from factory.sources.youtube import DownloadSettings, expand_inputs


def video_items(inputs: str | list[str], settings: DownloadSettings | None = None) -> list[InputItem]:
    """Expand video inputs (URLs, files, s3://, list files) into pipeline inputs.

    One item per video, its manifest entry in ``meta``. Entries that failed to
    expand stay in the list: fetching them raises the expansion error, which
    the pipeline records as that input's error row.
    """
    return [InputItem(input_id=e.video_id, uri=e.url, meta=e.to_dict()) for e in expand_inputs(inputs, settings)]
