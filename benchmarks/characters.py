"""Identity grouping: adjusted Rand index of each embedding against drawn truth.

    python -m benchmarks.characters [--embedding classifier:NAME[@VERSION] ...] [--json figures.json]

Inputs: synthetic videos (factory/synthetic/video.py) of 6 shots of 2.5 s,
each shot one of three characters told apart by hair colour (blue, green,
pink), in 2D and 3D style, three casts each. The real `VideoMiner`
(MediaPipe, tracking, alignment) mines the tracks; each embedding groups
each video's tracks (factory/characters) at every threshold of the grid. The
truth of a track is the character drawn in the shot holding its middle.
Printed per embedding: mean ARI per threshold, and per video the largest
distance between two tracks of one character and the smallest between two
characters (the margin the threshold sits in).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from factory.characters.embed import make_embedder
from factory.characters.grouping import adjusted_rand_index
from factory.characters.run import group_tracks, read_tracks
from factory.pipelines.inputs import video_items
from factory.pipelines.video import VideoConfig, VideoMiner
from factory.shards import SequentialAllocator, ShardedWriter
from factory.storage import open_location
from factory.synthetic.video import Placement, VideoSpec, make_video

SHOT_S = 2.5
CASTS = (
    ("blue", "green", "pink", "green", "pink", "blue"),
    ("blue", "pink", "blue", "pink", "pink", "blue"),
    ("pink", "blue", "green", "blue", "pink", "green"),
)
THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


def mine(folder: Path) -> tuple[str, dict[str, tuple[str, ...]]]:
    """Make and mine the videos into one committed dataset; returns its URL and each video's cast."""
    miner = VideoMiner(VideoConfig(style_filter="any"))
    out, casts = open_location(str(folder / "video")), {}
    with ShardedWriter(out, SequentialAllocator(), writer_id="bench") as writer:
        for style in ("2d", "3d"):
            for seed, cast in enumerate(CASTS):
                spec = VideoSpec(style=style, duration_s=SHOT_S * len(cast), speech=(), seed=seed,
                                 shots=tuple((Placement(c, 0.5, 0.54, 1.0),) for c in cast))  # fmt: skip
                video = make_video(folder / f"{style}{seed}.mp4", spec)
                item = asdict(video_items(str(video.path))[0])
                casts[item["input_id"]] = cast
                writer.write_all(miner(item))
    return out.url, casts


def measure(data_url: str, casts: dict[str, tuple[str, ...]], spec: str) -> dict:
    """ARI per threshold (mean over videos) and the distance margins per video."""
    tracks, _ = read_tracks(data_url, make_embedder(spec))
    by_threshold: dict[float, list[float]] = {t: [] for t in THRESHOLDS}
    margins = {}
    for video_id, cast in casts.items():
        members = [t for t in tracks if t.video_id == video_id]
        truth = [cast[min(int((t.meta["start_s"] + t.meta["end_s"]) / 2 / SHOT_S), len(cast) - 1)] for t in members]
        for threshold in THRESHOLDS:
            labels, _ = group_tracks(members, threshold)
            by_threshold[threshold].append(adjusted_rand_index(truth, labels))
        emb = np.stack([t.face_embeddings.mean(0) for t in members])
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        dist = 1 - emb @ emb.T
        same = np.equal.outer(truth, truth) & ~np.eye(len(truth), dtype=bool)
        other = ~np.equal.outer(truth, truth)
        margins[video_id] = {"tracks": len(members), "within_max": round(float(dist[same].max(initial=0)), 4),
                             "between_min": round(float(dist[other].min(initial=2)), 4)}  # fmt: skip
    return {"ari": {t: round(float(np.mean(v)), 3) for t, v in by_threshold.items()}, "videos": margins}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedding", action="append", default=[], help="more embeddings beside hue")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_url, casts = mine(Path(tmp))
        figures = {spec: measure(data_url, casts, spec) for spec in ["hue", *args.embedding]}
    for spec, fig in figures.items():
        print(f"{spec}: mean ARI by threshold {fig['ari']}")
        for video_id, m in fig["videos"].items():
            print(f"  {video_id}: {m}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
