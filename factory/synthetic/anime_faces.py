"""Procedural 2D anime illustrations with exact face boxes: detector training data without hand labels.

Each image (``size`` x ``size``) holds one to five characters drawn by
:mod:`factory.synthetic.anime_draw` (faces from ``min_face_px`` to most of the
frame, some cut by the border, some behind others; sometimes a character seen
from behind, who has no face) over a varied background
(:func:`factory.train.images.varied_background`), then finished in one look
(colour, soft paint, greyscale, line art, screentone) and degraded (gamma,
colour and hue jitter, blur, down-up scaling, noise, JPEG).

Written as render-contract samples (``kind="render"``, RGB ``png``) with two
box fields: ``face_boxes`` (every labelled face, [x0, y0, x1, y1] pixels,
brows to chin, between the ears) and ``face_bbox`` (the largest of them, so a
reader of single-box renders sees one face). A face keeps its box only when at
least half of it is visible (in the frame, not behind another character).
A share of the images (``background_rate``) shows no face at all (a
background, perhaps characters seen from behind): ``face_boxes`` is ``[]`` and
``face_bbox`` null, YOLO's background images. Each image is its own identity;
``split`` is drawn per image. All randomness comes from the seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from factory.dataset import finalize
from factory.provenance import utc_now
from factory.render.morphs import POSE_SIZE
from factory.render.styles import line_drawing
from factory.shards import SequentialAllocator, ShardedWriter, ShardLimits, ShardStats, make_key
from factory.storage import open_location
from factory.synthetic.anime_draw import Look, Placement, draw_character, face_box, random_look
from factory.synthetic.faces import png_bytes
from factory.train.images import varied_background

Box = tuple[float, float, float, float]
_FACE_COUNTS = (1, 2, 3, 4, 5)
_FACE_COUNT_P = (0.5, 0.25, 0.12, 0.08, 0.05)
MIN_VISIBLE = 0.5  # share of a face that must show for it to keep its box
_INPUT_CHUNK = 100  # images per dataset input (resume unit)


@dataclass(frozen=True)
class AnimeFaceConfig:
    """How many images, how large, how many faces."""

    images: int = 1000
    size: int = 320
    test_fraction: float = 0.1
    seed: int = 0
    max_faces: int = 5
    min_face_px: float = 16.0
    back_view_rate: float = 0.2  # images with an extra character seen from behind
    # Images that show no face (a background, maybe characters seen from behind), with
    # no label: YOLO's "background images", which teach it what is not a face
    # (ultralytics' guidance: 0-10 % of a dataset).
    background_rate: float = 0.1

    def __post_init__(self) -> None:
        if self.images < 1 or self.size < 64 or not 1 <= self.max_faces <= 5 or self.min_face_px < 4:
            raise ValueError("need images >= 1, size >= 64, 1 <= max_faces <= 5, min_face_px >= 4")
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError("test_fraction must lie in [0, 1)")
        if not 0.0 <= self.background_rate < 1.0:
            raise ValueError("background_rate must lie in [0, 1)")


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / smaller if smaller > 0 else 1.0


def _inside(box: Box, size: int) -> float:
    """Share of the box inside the image."""
    w = max(0.0, min(box[2], size) - max(box[0], 0.0))
    h = max(0.0, min(box[3], size) - max(box[1], 0.0))
    return w * h / max(1e-6, (box[2] - box[0]) * (box[3] - box[1]))


def _face_width(rng: np.random.Generator, config: AnimeFaceConfig, faces: int) -> float:
    """Face box width in pixels: log-uniform over the whole range, or the sizes of a portrait."""
    top = config.size * (0.85 if faces == 1 else 0.6 / faces**0.5)
    low = min(config.min_face_px, top / 2)
    if rng.random() < 0.4:
        return float(np.exp(rng.uniform(np.log(low), np.log(top))))
    return float(rng.uniform(max(low, 0.15 * config.size), max(low + 1, min(top, 0.55 * config.size))))


def _placement(rng: np.random.Generator, size: int, width: float) -> Placement:
    margin = 0.35 * width
    turned = rng.random() < 0.6
    return Placement(
        cx=float(rng.uniform(-margin, size + margin)),
        cy=float(rng.uniform(-margin, size + margin)),
        scale=width / 2,
        roll_deg=float(np.clip(rng.normal(0, 12), -35, 35)),
        turn=float(rng.uniform(-0.8, 0.8)) if turned else 0.0,
        mirror=bool(rng.random() < 0.5),
    )


def _backs(rng: np.random.Generator, config: AnimeFaceConfig) -> list[tuple[Look, Placement, Box | None]]:
    """The cast of an image of no face: 0-2 characters seen from behind, far ones first."""
    cast = [
        (random_look(rng, back_view=True), _placement(rng, config.size, _face_width(rng, config, 1)), None)
        for _ in range(int(rng.integers(0, 3)))
    ]
    return sorted(cast, key=lambda c: c[1].scale)


def _cast(rng: np.random.Generator, config: AnimeFaceConfig) -> list[tuple[Look, Placement, Box | None]]:
    """Characters of one image: (look, placement, face box or None for a back view), far ones first."""
    wanted = int(rng.choice(_FACE_COUNTS[: config.max_faces], p=np.divide(_FACE_COUNT_P[: config.max_faces], sum(_FACE_COUNT_P[: config.max_faces]))))
    cast: list[tuple[Look, Placement, Box | None]] = []
    for _ in range(wanted * 20):
        if len(cast) == wanted:
            break
        look = random_look(rng)
        place = _placement(rng, config.size, _face_width(rng, config, wanted))
        box = face_box(look, place)
        if _inside(box, config.size) < 0.45 or any(_overlap(box, b) > 0.1 for _, _, b in cast if b):
            continue
        cast.append((look, place, box))
    if rng.random() < config.back_view_rate:
        place = _placement(rng, config.size, _face_width(rng, config, wanted))
        cast.append((random_look(rng, back_view=True), place, None))
    return sorted(cast, key=lambda c: c[1].scale)


# -- looks of the finished image -------------------------------------------------------
def _grey(rgb: np.ndarray) -> np.ndarray:
    return np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


def _soft(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Soft painted look: edge-preserving smoothing and a bloom."""
    smooth = cv2.bilateralFilter(rgb, 7, 40, 7)
    bloom = cv2.GaussianBlur(smooth, (0, 0), float(rng.uniform(3, 10)))
    return cv2.addWeighted(smooth, 0.75, bloom, 0.25, float(rng.uniform(0, 20)))


def _lineart(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    ink = line_drawing(rgba)[..., :3]
    return ink if rng.random() < 0.5 else cv2.addWeighted(ink, 0.7, _grey(rgb), 0.3, 0)


def _screentone(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Manga: greyscale with mid tones as a dot screen."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    period = int(rng.integers(3, 6))
    ys, xs = np.mgrid[: grey.shape[0], : grey.shape[1]]
    dots = (np.sin(xs * np.pi * 2 / period) * np.sin(ys * np.pi * 2 / period) + 1) * 127.5
    mid = (grey > 70) & (grey < 200)
    out = np.where(mid, np.where(grey > dots, 255.0, 40.0), grey)
    return np.repeat(out.astype(np.uint8)[..., None], 3, axis=2)


FINISHES = {
    "colour": (0.55, lambda rgb, rng: rgb),
    "soft": (0.15, _soft),
    "greyscale": (0.12, lambda rgb, rng: _grey(rgb)),
    "line_art": (0.1, _lineart),
    "screentone": (0.08, _screentone),
}


def degrade(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gamma, colour gains, hue shift, blur, down-up scaling, noise and JPEG, each at random."""
    img = rgb.astype(np.float32) / 255
    img = img ** float(rng.uniform(0.7, 1.45)) * rng.uniform(0.85, 1.15, 3) + float(rng.uniform(-0.06, 0.06))
    out = np.clip(img * 255, 0, 255).astype(np.uint8)
    if rng.random() < 0.25:
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0].astype(int) + int(rng.integers(0, 180))) % 180
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.3, 1.5)))
    if rng.random() < 0.3:
        h, w = out.shape[:2]
        f = float(rng.uniform(0.35, 0.9))
        out = cv2.resize(cv2.resize(out, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA), (w, h))
    if rng.random() < 0.3:
        out = np.clip(out + rng.normal(0, float(rng.uniform(2, 8)), out.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.6:
        ok, jpg = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 96))])
        out = cv2.imdecode(jpg, cv2.IMREAD_UNCHANGED)
    return out


def visible_boxes(boxes: list[Box | None], faces: list[np.ndarray | None], owner: np.ndarray, size: int) -> list[list[float]]:
    """The boxes of faces that still show: at least MIN_VISIBLE of a face's in-frame pixels
    are its own character's (``owner``: index of the character drawn last at each pixel)
    and at least 45 % of its box is inside the image; clipped to the image."""
    out = []
    for i, (box, face) in enumerate(zip(boxes, faces)):
        if face is None or box is None:
            continue
        area = int((face > 0).sum())  # the in-frame part of the face
        shown = int(((face > 0) & (owner == i)).sum())
        if area and shown / area >= MIN_VISIBLE and _inside(box, size) >= 0.45:
            x0, y0, x1, y1 = np.clip(box, 0, size)
            out.append([round(float(v), 2) for v in (x0, y0, x1, y1)])
    return out


def draw_scene(rng: np.random.Generator, config: AnimeFaceConfig, faceless: bool = False) -> tuple[np.ndarray, list[list[float]], str]:
    """One finished RGB image, its visible face boxes (clipped to the image) and its finish name;
    ``faceless``: an image of no face (its box list is empty)."""
    size = config.size
    while True:
        cast = _backs(rng, config) if faceless else _cast(rng, config)
        img = varied_background(rng, size, size).astype(np.float32)
        owner = np.full((size, size), -1, np.int16)
        masks = []
        for i, (look, place, _) in enumerate(cast):
            rgb, alpha, face = draw_character(look, place, size, size, rng)
            a = (alpha.astype(np.float32) / 255)[..., None]
            img = img * (1 - a) + rgb * a
            owner[alpha > 127] = i
            masks.append(face)
        boxes = visible_boxes([box for _, _, box in cast], masks, owner, size)
        if boxes or faceless:
            break
    names = list(FINISHES)
    finish = names[int(rng.choice(len(names), p=[FINISHES[n][0] for n in names]))]
    out = FINISHES[finish][1](np.round(img).astype(np.uint8), rng)
    return degrade(out, rng), boxes, finish


def _largest(boxes: list[list[float]]) -> list[float]:
    return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))


def scene_row(config: AnimeFaceConfig, index: int) -> dict:
    """The render-contract row of image ``index`` (its own seed, identity and split)."""
    seed = int(np.random.SeedSequence([config.seed, index, 13]).generate_state(1)[0])
    rng = np.random.default_rng(seed)
    rgb, boxes, finish = draw_scene(rng, config, faceless=rng.random() < config.background_rate)
    model_id = f"anime{config.seed:03d}i{index:06d}"
    split = "test" if rng.random() < config.test_fraction else "train"
    meta = {
        "kind": "render",
        "model_id": model_id,
        "model_name": model_id,
        "split": split,
        "partition": "frontal",
        "style": finish,
        "pose": [0.0] * POSE_SIZE,
        "morphs": {},
        "light_intensity": 1.0,
        "face_bbox": _largest(boxes) if boxes else None,
        "face_boxes": boxes,
        "engine": "procedural-2d",
        "samples": 1,
        "seed": seed,
    }
    return {"__key__": make_key(model_id, 0), "__split__": split, "png": png_bytes(rgb), "json": meta}


def write_anime_face_dataset(out_url: str, config: AnimeFaceConfig = AnimeFaceConfig()) -> list[ShardStats]:
    """Write ``config.images`` drawn illustrations under ``out_url`` as committed shards, then dataset.json."""
    started = utc_now()
    out = open_location(out_url)
    out.ensure_writable()
    inputs = []
    with ShardedWriter(out, SequentialAllocator(), ShardLimits(max_samples=500), writer_id="anime-faces") as writer:
        for start in range(0, config.images, _INPUT_CHUNK):
            input_id = f"anime{config.seed:03d}-{start // _INPUT_CHUNK:05d}"
            rows = [scene_row(config, i) for i in range(start, min(config.images, start + _INPUT_CHUNK))]
            for row in rows:
                row["__input__"], row["__input_rows__"] = input_id, len(rows)
            writer.write_all(rows)
            inputs.append((input_id, f"synthetic:{input_id}"))
    finalize(out, "anime-faces", asdict(config), inputs=inputs, started=started)
    return writer.committed


def add_anime_faces_arguments(p) -> None:
    """`factory anime-faces` flags."""
    p.add_argument("--out", required=True, help="dataset URL (path, file://, s3://)")
    p.add_argument("--images", type=int, default=AnimeFaceConfig.images)
    p.add_argument("--size", type=int, default=AnimeFaceConfig.size, help="image side in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--background-rate", type=float, default=AnimeFaceConfig.background_rate,
                   help="share of images that show no face (unlabelled background images)")


def run_anime_faces_from_args(args) -> int:
    """Write the illustrations; prints the committed shard and sample counts."""
    stats = write_anime_face_dataset(args.out, AnimeFaceConfig(
        images=args.images, size=args.size, seed=args.seed, background_rate=args.background_rate))
    print(f"anime-faces: {len(stats)} shards, {sum(s.samples for s in stats)} images under {args.out}")
    return 0
