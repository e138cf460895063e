"""`factory video` on real 2D anime art: a slideshow of ../shared/realdata/anime2d_dev, mined with the shipped detector.

Each of the 18 illustrations is on screen for 3 s (a cut between them), so
the image a track's best face comes from is known, and so are its face
boxes. The set is for evaluation only: nothing here trains or tunes on it.
What it showed first (and the fixes it led to): the tracks started at
MediaPipe's 0.8 whatever the detector (now the detector's own score), and a
track whose faces no landmarker fits (the YOLO detector has no keypoints;
the face mesh misses some drawn faces) was dropped (now kept with box
landmarks). Still wrong and bounded, not fixed: the Scharr style
classifier calls these illustrations 3D (not asserted), one cut between two
illustrations scores under the shot threshold, and the detector's false
boxes, when larger than the face, become the track.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict

import numpy as np
import pytest

from actors.detection import start_score, stored_spec
from factory.models import SHIPPED_STORE, ModelStore
from factory.pipelines.inputs import video_items
from factory.pipelines.video import VideoConfig, VideoMiner
from factory.boxes import iou
from factory.train.real_art import load_real_art
from factory.video.align import BOX_SOURCE
from factory.video.tracks import TrackSettings

from tests.realdata import ANIME2D

SECONDS_PER_IMAGE = 3.0


@pytest.fixture(scope="module")
def slideshow(tmp_path_factory):
    if not (ANIME2D / "boxes.json").is_file():
        pytest.skip(f"real anime art not found at {ANIME2D} (../shared/realdata)")
    images = load_real_art(ANIME2D)
    folder = tmp_path_factory.mktemp("real_video")
    listing = folder / "concat.txt"
    lines = [f"file '{ANIME2D / i.name}'\nduration {SECONDS_PER_IMAGE}" for i in images]
    listing.write_text("\n".join([*lines, f"file '{ANIME2D / images[-1].name}'"]) + "\n")
    path = folder / "slideshow.mp4"
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing)]
    subprocess.run([*cmd, "-vf", "fps=24,format=yuv420p", "-c:v", "libx264", "-g", "48", str(path)], check=True)
    return path, images


def test_shipped_detector_mines_a_track_per_real_illustration(slideshow):
    path, images = slideshow
    spec = stored_spec(ModelStore(str(SHIPPED_STORE)).fetch("detector"))
    config = VideoConfig(detector=spec, style_filter="any", tracks=TrackSettings(start_score=start_score(spec)))
    rows = VideoMiner(config)(asdict(video_items(str(path))[0]))
    assert rows and all("__error__" not in r for r in rows), rows[0]
    tracks = [r["json"] for r in rows]
    shown, matched = [], set()
    for t in tracks:
        image = min(int(t["face_time_s"] // SECONDS_PER_IMAGE), len(images) - 1)
        best = max(iou(t["bbox"], box) for box in images[image].boxes)
        shown.append({"image": image, "iou": round(best, 3), "source": t["landmarks_source"], "span": [t["start_s"], t["end_s"]]})
        if best >= 0.5:
            matched.add(image)
    print(json.dumps({"tracks": len(tracks), "images_matched": len(matched), "of": len(images), "per_track": shown}))
    # When written: 15 of 18 illustrations, 17 tracks. One cut missed merges two illustrations into
    # one track; two tracks follow a detector false box (clothes, sky), larger than the real face
    # beside it (method A's tracker takes the largest face): the extra boxes of issue 13.
    assert len(matched) >= 15
    assert sum(s["iou"] < 0.5 for s in shown) <= 2
    for t in tracks:  # box landmarks claim no pose
        if t["landmarks_source"] == BOX_SOURCE:
            assert t["yaw"] is None and t["frontal_score"] is None
    assert np.unique([s["image"] for s in shown]).size == len(shown)  # one track per illustration
