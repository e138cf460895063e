"""Face detectors on real anime art they never trained on: recall at IoU 0.5 and extra boxes per image.

    python benchmarks/detector_real_art.py [--images DIR] [--store DIR] [--confidence 0.25,0.6] [--json F]

Scores, in one run, the shipped baselines (animeface, MediaPipe short range,
each at its default score) and every YOLO detector named with ``--yolo``
(model-store ``NAME[@VERSION]`` or a weights file; default: the store's
``detector`` when there is one) at each ``--confidence``. The images default
to ../shared/realdata/anime2d_dev (evaluation only: never train on it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.detection import DetectorError, DetectorSettings, make_detector  # noqa: E402
from factory.train.real_art import load_real_art, score_detector  # noqa: E402

REAL_ART = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "anime2d_dev"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default=str(REAL_ART), help="folder with images and boxes.json")
    p.add_argument("--store", help="model store (default FACTORY_MODEL_STORE)")
    p.add_argument("--yolo", action="append", help="stored NAME[@VERSION] or weights file (repeatable; default: detector)")
    p.add_argument("--confidence", type=lambda s: [float(v) for v in s.split(",")], default=[0.25, 0.6])
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()
    if args.store:
        os.environ["FACTORY_MODEL_STORE"] = args.store
    images = load_real_art(args.images)
    rows = []
    for spec in ("animeface", "mediapipe"):
        rows.append({"detector": spec, "confidence": "default", **score_detector(make_detector(spec), images).to_json()})
    for name in args.yolo or ["detector"]:
        for conf in args.confidence:
            try:
                detector = make_detector(f"yolo:{name}", DetectorSettings(min_score=conf))
            except DetectorError as exc:
                print(f"skipped yolo:{name}: {exc}", file=sys.stderr)
                break
            rows.append({"detector": f"yolo:{name} ({detector.version})", "confidence": conf,
                         **score_detector(detector, images).to_json()})
    print("| detector | confidence | recall @ IoU 0.5 | extra boxes / image |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['detector']} | {r['confidence']} | {r['recall']:.2f} ({r['found']}/{r['faces']}) | {r['extra_per_image']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
