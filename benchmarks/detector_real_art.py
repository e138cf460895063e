"""Face detectors on real anime art they never trained on: recall at IoU 0.5 and extra boxes per image.

    python benchmarks/detector_real_art.py [--images DIR] [--store DIR] [--confidence 0.25,0.6]
        [--flip-vote] [--drawings N --drawings-seed S] [--json F]

Scores, in one run, the shipped baselines (animeface, MediaPipe short range,
each at its default score) and every YOLO detector named with ``--yolo``
(model-store ``NAME[@VERSION]`` or a weights file, or several joined by ``+``:
an ensemble that votes; default: the store's ``detector`` when there is one) at each ``--confidence``, and with
``--flip-vote`` each of those again with the mirror-image vote. The images
default to ../shared/realdata/anime2d_dev (evaluation only: never train on
it); ``--drawings N`` scores the same detectors on N procedural drawings of a
seed no training run used, to set the real-art figures beside held-out
synthetic ones.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.detection import DetectorError, DetectorSettings, make_detector  # noqa: E402
from factory.synthetic.anime_faces import AnimeFaceConfig, draw_scene  # noqa: E402
from factory.train.real_art import RealArtImage, load_real_art, score_detector  # noqa: E402

REAL_ART = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "anime2d_dev"


def held_out_drawings(count: int, seed: int) -> list[RealArtImage]:
    """``count`` procedural illustrations with faces (no background-only images), as a scoring set."""
    config = AnimeFaceConfig(seed=seed, background_rate=0.0)
    images = []
    for i in range(count):
        rgb, boxes, _ = draw_scene(np.random.default_rng([seed, i]), config)
        images.append(RealArtImage(f"drawing{i:04d}", rgb, boxes))
    return images


def score_all(images: list[RealArtImage], yolos: list[str], confidences: list[float], votes: list[bool]) -> list[dict]:
    """Rows of the baselines and of every YOLO detector at every confidence and vote, on one set."""
    rows = []
    for spec in ("animeface", "mediapipe"):
        rows.append({"detector": spec, "confidence": "default", "flip_vote": False,
                     **score_detector(make_detector(spec), images).to_json()})
    for name in yolos:
        try:
            make_detector(f"yolo:{name}")
        except DetectorError as exc:  # skip this one, score the others
            print(f"skipped yolo:{name}: {exc}", file=sys.stderr)
            continue
        for vote in votes:
            for conf in confidences:
                detector = make_detector(f"yolo:{name}", DetectorSettings(min_score=conf, flip_vote=vote))
                rows.append({"detector": f"yolo:{name} ({detector.version})", "confidence": conf, "flip_vote": vote,
                             **score_detector(detector, images).to_json()})
    return rows


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}\n\n| detector | flip vote | confidence | recall @ IoU 0.5 | extra boxes / image |\n|---|---|---:|---:|---:|")
    for r in rows:
        vote = "yes" if r["flip_vote"] else "no"
        print(f"| {r['detector']} | {vote} | {r['confidence']} | {r['recall']:.2f} ({r['found']}/{r['faces']}) "
              f"| {r['extra_per_image']:.2f} |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default=str(REAL_ART), help="folder with images and boxes.json")
    p.add_argument("--store", help="model store (default FACTORY_MODEL_STORE)")
    p.add_argument("--yolo", action="append", help="stored NAME[@VERSION] or weights file, A+B an ensemble (repeatable; default: detector)")
    p.add_argument("--confidence", type=lambda s: [float(v) for v in s.split(",")], default=[0.25, 0.6])
    p.add_argument("--json", help="also write the rows here")
    p.add_argument("--flip-vote", action="store_true", help="also score every YOLO detector with the mirror-image vote")
    p.add_argument("--drawings", type=int, default=0, help="also score on this many held-out procedural drawings")
    p.add_argument("--drawings-seed", type=int, default=99, help="their seed (one no training run used)")
    args = p.parse_args()
    if args.store:
        os.environ["FACTORY_MODEL_STORE"] = args.store
    yolos = args.yolo or ["detector"]
    votes = [False, True] if args.flip_vote else [False]
    sets = {f"real art: {args.images}": load_real_art(args.images)}
    if args.drawings:
        sets[f"held-out drawings: {args.drawings}, seed {args.drawings_seed}"] = held_out_drawings(
            args.drawings, args.drawings_seed)
    report = {title: score_all(images, yolos, args.confidence, votes) for title, images in sets.items()}
    for title, rows in report.items():
        print_table(title, rows)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
