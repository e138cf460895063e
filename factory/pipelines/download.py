"""`factory download`: the yt-dlp stage alone, raw videos into WebDataset shards.

One input is one video of the manifest (URLs, channels, playlists, files,
s3:// objects, list files; see :mod:`factory.sources.manifest`). A pool of
:class:`Downloader` actors fetches each video and turns it into one sample,
key = the video's stable id:

- ``{id}.mp4`` (or the source container's extension): the file as fetched;
- ``{id}.json``: id, url, title, uploader, duration, fps, width, height, ext,
  the manifest entry (``source``) and the format yt-dlp chose (``format``);
- ``{id}.txt``: the title (video2dataset keeps a caption there).

A failed video is one error row. A rerun over the same OUT skips every id
already committed before anything is fetched. ``factory video --input OUT``
reads the result (see :mod:`factory.sources.video_shards`).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from factory.pipelines.inputs import video_items
from factory.pipelines.runner import RunResult, actor_pool_stage, run
from factory.rows import rows_for_input
from factory.pipelines.runtime import parse_pool
from factory.shards import ShardLimits
from factory.sources.youtube import DownloadSettings, SourceEntry, fetched, format_info
from factory.video.decode import Video

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownloadConfig:
    """Settings of a `factory download` run."""

    download: DownloadSettings = field(default_factory=DownloadSettings)
    workers: tuple[int, int] = (1, 2)
    # Videos are large: a write task bundles one shard's rows, so shards stay small (16 videos or 1 GiB).
    limits: ShardLimits = field(default_factory=lambda: ShardLimits(max_samples=16, max_bytes=1 << 30))


def video_json(entry: SourceEntry, path: Path) -> dict[str, Any]:
    """The sample json of one fetched video: what yt-dlp and the decoder know about it."""
    fmt = format_info(path)
    with Video(path) as video:
        meta = video.meta
    return {
        "id": entry.video_id,
        "key": entry.video_id,
        "status": "success",  # video2dataset's field: readers of its shards filter on it
        "url": entry.webpage_url or entry.url,
        "title": entry.title,
        "uploader": entry.uploader,
        "duration": meta.duration_s,
        "fps": meta.fps,
        "width": meta.width,
        "height": meta.height,
        "ext": fmt["ext"],
        "bytes": fmt["bytes"],
        "source": entry.to_dict(),
        "format": {k: v for k, v in fmt.items() if k not in ("bytes", "ext")},
    }


class Downloader:
    """Actor: one manifest entry -> one raw-video sample (or one error row)."""

    def __init__(self, config: DownloadConfig) -> None:
        self.config = config

    def __call__(self, item: dict) -> list[dict]:
        return rows_for_input(item, lambda: [self.sample(item)])

    def sample(self, item: dict) -> dict:
        """The sample of one video; raises (one line) when it cannot be fetched or read."""
        entry = SourceEntry.from_dict(item["meta"])
        with fetched(entry, self.config.download) as path:
            info = video_json(entry, path)
            return {"__key__": entry.video_id, info["ext"]: path.read_bytes(), "json": info, "txt": entry.title or ""}


def run_download(inputs: str | list[str], out_url: str, config: DownloadConfig = DownloadConfig()) -> RunResult:
    """Download every input video into committed shards under ``out_url``; committed ids are skipped."""
    items = video_items(inputs, config.download)
    build = actor_pool_stage(Downloader, config, config.workers)
    settings = {"download": asdict(config.download), "limits": asdict(config.limits)}
    return run("download", out_url, settings, items, build, limits=config.limits, resume=True)


def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """The `factory download` flags."""
    d = DownloadSettings()
    parser.add_argument("--input", required=True, help="video URL, channel, playlist, local file, s3:// URL, or a .txt list of them")
    parser.add_argument("--out", required=True, help="output folder or URL (path, file://, s3://); a rerun skips committed ids")
    parser.add_argument("--workers", default="1:2", help="downloader actor pool MIN:MAX (each sleeps between downloads)")
    parser.add_argument("--max-height", type=int, default=d.max_height, help="best video at most this tall, pixels")
    parser.add_argument("--sleep", type=float, default=d.sleep_download_s, help="seconds each worker waits before a download")
    parser.add_argument("--cookies", help="cookies file (Netscape format) for the video site")
    parser.add_argument("--shard-videos", type=int, default=16, help="videos per shard at most")


def run_download_from_args(args: argparse.Namespace) -> int:
    """`factory download` handler: run, print a one-line summary; bad URLs are error rows."""
    settings = DownloadSettings(max_height=args.max_height, sleep_download_s=args.sleep, cookies_file=args.cookies)
    limits = ShardLimits(max_samples=args.shard_videos, max_bytes=DownloadConfig().limits.max_bytes)
    config = DownloadConfig(download=settings, workers=parse_pool(args.workers), limits=limits)
    result = run_download(args.input, args.out, config)
    counts = result.dataset.get("counts", {})
    print(
        f"{result.inputs_total} videos ({result.inputs_skipped} already done): "
        f"{counts.get('samples', 0)} downloaded, {counts.get('errors', 0)} errors -> {args.out}"
    )
    return 0
