"""A sheet of Gene in each shader style and a few poses, for docs/RENDER.md.

    .venv/bin/python scripts/render_style_sheet.py [--out docs/render-styles-gene.png] [--samples 16]

Rows are poses (frontal; yaw -15 with light 0.4; yaw +15, pitch 8 with
light 0.9), columns the styles in registry order, each tile 256x256 over a
light grey so the transparent background shows. Gene is read from
../shared/realdata (not shipped with the project): compare with its
author's own picture, ../shared/realdata/mmd/gene/gene.png.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image

GENE = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "mmd" / "gene" / "Gene_light.pmx"
POSES = ({"light_intensity": 0.6}, {"yaw": -15.0, "light_intensity": 0.4},
         {"yaw": 15.0, "pitch": 8.0, "light_intensity": 0.9})
BACKGROUND = 235


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "render-styles-gene.png"))
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args(argv)
    if not GENE.is_file():
        raise SystemExit(f"Gene not found at {GENE} (../shared/realdata)")

    from factory.render.jobs import RenderSettings
    from factory.render.scene import ModelScene
    from factory.render.styles import STYLE_REGISTRY

    scene = ModelScene.from_file(GENE, RenderSettings(samples=args.samples))
    rows = []
    try:
        for pose in POSES:
            tiles = []
            for name in STYLE_REGISTRY:
                scene.pose({}, style=name, **pose)
                rgba = np.asarray(Image.open(io.BytesIO(scene.render())).convert("RGBA")).astype(np.float32)
                alpha = rgba[..., 3:] / 255
                tiles.append(rgba[..., :3] * alpha + BACKGROUND * (1 - alpha))
            rows.append(np.concatenate(tiles, axis=1))
    finally:
        scene.close()
    out = Path(args.out)
    Image.fromarray(np.concatenate(rows, axis=0).round().astype(np.uint8)).save(out, optimize=True)
    print(f"wrote {out}: columns {', '.join(STYLE_REGISTRY)}")
    return out


if __name__ == "__main__":
    main()
