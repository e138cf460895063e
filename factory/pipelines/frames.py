"""Frame sampling: videos -> sampled frames with per-video style, as shards.

The first stage of the video pipeline on its own (issue 3 adds detection,
tracks, alignment and audio after it). Each video is one input; each sampled
frame is one ``video_frame`` sample (``jpg`` + ``json``). Policies: ``every``
0.5 s (method A) or ``keyframes`` + one P-frame per second (method D).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Iterator

import cv2
import numpy as np

from factory.pipelines.inputs import video_items
from factory.pipelines.runner import RunResult, actor_pool_stage, run
from factory.rows import rows_for_input
from factory.shards import ShardLimits, make_key
from factory.sources.youtube import SourceEntry, fetched
from factory.video.decode import SamplingSettings, Video
from factory.video.style import StyleSettings, frame_style_score, video_style


@dataclass(frozen=True)
class FramesConfig:
    """Settings of the frame sampling run."""

    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    style: StyleSettings = field(default_factory=StyleSettings)
    max_side: int = 256  # sampled frames are downscaled to this longest side
    jpeg_quality: int = 90
    workers: tuple[int, int] = (1, 2)
    limits: ShardLimits = field(default_factory=ShardLimits)


def _encode_jpeg(frame: np.ndarray, max_side: int, quality: int) -> bytes:
    h, w = frame.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        frame = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


class FrameSampler:
    """Ray Data stage: one input row (a video) -> its sampled frame rows."""

    def __init__(self, config: FramesConfig) -> None:
        self.config = config

    def _rows(self, item: dict) -> Iterator[dict]:
        cfg = self.config
        rows, style_scores = [], []
        with fetched(SourceEntry.from_dict(item["meta"])) as path, Video(path) as video:
            meta = video.meta
            for batch in video.frame_batches(cfg.sampling):
                for index, time_s, kind, frame in batch:
                    style_scores.append(frame_style_score(frame, cfg.style))
                    rows.append(
                        {
                            "__key__": make_key(item["input_id"], kind, f"{index:07d}"),
                            "jpg": _encode_jpeg(frame, cfg.max_side, cfg.jpeg_quality),
                            "json": {
                                "kind": "video_frame",
                                "video_id": item["input_id"],
                                "source_url": item["uri"],
                                "frame_index": index,
                                "frame_kind": kind,
                                "time_s": round(time_s, 4),
                                "fps": meta.fps,
                                "width": meta.width,
                                "height": meta.height,
                                "has_audio": video.has_audio,
                            },
                        }
                    )
        style = video_style(style_scores, cfg.style)
        for row in rows:
            row["json"].update(style=style.style, style_score=style.style_score)
            row["json"] = json.dumps(row["json"]).encode()
        return iter(rows)

    def __call__(self, item: dict) -> list[dict]:
        return rows_for_input(item, lambda: self._rows(item))


def run_frames(
    inputs: str | list[str], out_url: str, config: FramesConfig = FramesConfig(), resume: bool = True, takeover: bool = False
) -> RunResult:
    """Sample frames of every input video into committed shards under ``out_url``."""
    items = video_items(inputs)
    build = actor_pool_stage(FrameSampler, config, config.workers)
    settings = {"sampling": asdict(config.sampling), "style": asdict(config.style), "max_side": config.max_side}
    return run("frames", out_url, settings, items, build, limits=config.limits, resume=resume, takeover=takeover)
