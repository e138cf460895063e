"""Labelled synthetic character renders: training data for the detector and classifier.

Each character is a drawn figure (body, neck, head from
:func:`factory.synthetic.video.draw_face`) whose look depends on its classes,
so a model can learn them from pixels:

- gender ``male``: short hair and thick dark brows;
- gender ``female``: long hair falling behind the shoulders;
- gender ``child``: big eyes, a round head and a small body (always age ``0-9``);
- age ``10-19`` vs ``20+`` (male / female): a round vs an elongated face, a
  short vs a long neck.

Colours, drawing style, size and placement vary per character independently
of the classes. Images are 256x256 RGBA with a transparent background and the
exact head box, written as render-contract samples (``kind="render"``) through
:class:`factory.shards.ShardedWriter`, so the trainers read them exactly as
they read Blender renders. All randomness comes from the seed.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from PIL import Image

from factory.dataset import finalize
from factory.provenance import utc_now
from factory.render.morphs import POSE_SIZE
from factory.shards import SequentialAllocator, ShardedWriter, ShardLimits, ShardStats, make_key
from factory.storage import open_location
from factory.synthetic.video import STYLES, Character, Pose, draw_face

GENDERS = ("male", "female", "child")
AGE_GROUPS = ("0-9", "10-19", "20+")
SIZE = 256

_SKINS = ((250, 214, 184), (232, 186, 146), (255, 226, 204), (198, 150, 110), (240, 200, 170))
_HAIRS = ((110, 60, 35), (45, 45, 70), (215, 130, 50), (230, 210, 120), (180, 60, 90), (70, 110, 190), (200, 200, 210))
_IRISES = ((60, 110, 200), (40, 140, 80), (150, 80, 40), (160, 60, 160), (200, 70, 60))
_CLOTHES = ((60, 80, 160), (180, 50, 60), (60, 140, 90), (220, 200, 80), (90, 90, 90), (240, 240, 240))


@dataclass(frozen=True)
class Proportions:
    """Body shape of an age group, in head radii (head width radius = 1)."""

    face_ratio: tuple[float, float]  # head height / width radius, sampled per character
    neck: float  # neck length
    body: float  # torso height


# Registry: the look of each age group.
PROPORTIONS: dict[str, Proportions] = {
    "0-9": Proportions(face_ratio=(0.92, 1.0), neck=0.15, body=1.3),
    "10-19": Proportions(face_ratio=(1.0, 1.08), neck=0.35, body=2.0),
    "20+": Proportions(face_ratio=(1.28, 1.38), neck=0.6, body=2.6),
}


@dataclass(frozen=True)
class SyntheticCharacter:
    """One character: identity, classes and the look drawn for every image of it."""

    model_id: str
    gender: str
    age_group: str
    split: str
    style: str  # a key of factory.synthetic.video.STYLES
    colours: Character
    clothes: tuple[int, int, int]
    face_ratio: float
    scale: float  # head width radius in pixels

    @property
    def proportions(self) -> Proportions:
        return PROPORTIONS[self.age_group]


@dataclass(frozen=True)
class FaceDatasetConfig:
    """How many characters and images to make."""

    characters: int = 24
    images_per_character: int = 12
    test_fraction: float = 0.25  # share of characters held out (split="test")
    seed: int = 0
    max_roll_deg: float = 15.0

    def __post_init__(self) -> None:
        if self.characters < 2 or self.images_per_character < 1:
            raise ValueError("need at least 2 characters and 1 image per character")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError("test_fraction must lie in (0, 1)")


def _pick(rng: np.random.Generator, options: tuple) -> tuple:
    return options[int(rng.integers(len(options)))]


def make_characters(config: FaceDatasetConfig) -> list[SyntheticCharacter]:
    """Characters with classes in turn (balanced) and every split holding each gender."""
    rng = np.random.default_rng([config.seed, 1])
    n_test = max(len(GENDERS), round(config.characters * config.test_fraction))
    out = []
    for i in range(config.characters):
        gender = GENDERS[i % len(GENDERS)]
        age = "0-9" if gender == "child" else ("10-19", "20+")[(i // len(GENDERS)) % 2]
        colours = Character(skin=_pick(rng, _SKINS), hair=_pick(rng, _HAIRS), iris=_pick(rng, _IRISES), voice="")
        out.append(
            SyntheticCharacter(
                model_id=f"synth{config.seed:03d}c{i:04d}",
                gender=gender,
                age_group=age,
                split="test" if i >= config.characters - n_test else "train",
                style=("2d", "3d")[int(rng.integers(2))],
                colours=colours,
                clothes=_pick(rng, _CLOTHES),
                face_ratio=float(rng.uniform(*PROPORTIONS[age].face_ratio)),
                scale=float(rng.uniform(30, 44) * (1.1 if gender == "child" else 1.0)),
            )
        )
    return out


def _ellipse(img: np.ndarray, centre, axes, angle: float, colour, start: int = 0, end: int = 360) -> None:
    c = (round(centre[0] * 16), round(centre[1] * 16))
    a = (max(1, round(axes[0] * 16)), max(1, round(axes[1] * 16)))
    cv2.ellipse(img, c, a, angle, start, end, colour, -1, cv2.LINE_AA, 4)


def _body_shapes(ch: SyntheticCharacter, pose: Pose) -> list[tuple[tuple, tuple, tuple]]:
    """(centre, axes, colour) of the parts behind the head: torso, neck, long hair."""
    r, p = pose.rx, ch.proportions
    chin = pose.cy + pose.ry
    neck_len = p.neck * r
    shapes = [
        ((pose.cx, chin + neck_len + p.body * r * 0.5), (1.3 * r, p.body * r * 0.55), ch.clothes),
        ((pose.cx, chin + neck_len * 0.5), (0.3 * r, neck_len * 0.5 + 0.25 * r), ch.colours.skin),
    ]
    if ch.gender == "female":
        shapes.insert(0, ((pose.cx, pose.cy + 0.55 * pose.ry), (1.22 * r, 1.35 * pose.ry), ch.colours.hair))
    return shapes


def _draw_extras(img: np.ndarray, ch: SyntheticCharacter, pose: Pose) -> None:
    """Class cues painted over the face: big eyes for children, thick brows for men."""
    if ch.gender == "child":
        for side in (-1, 1):
            centre = pose.to_image(side * 0.38, 0.0)
            _ellipse(img, centre, (0.24 * pose.rx, 0.26 * pose.ry), pose.roll_deg, (250, 250, 250))
            _ellipse(img, centre, (0.17 * pose.rx, 0.21 * pose.ry), pose.roll_deg, ch.colours.iris)
            _ellipse(img, centre, (0.08 * pose.rx, 0.1 * pose.ry), pose.roll_deg, (25, 20, 30))
    if ch.gender == "male":
        for side in (-1, 1):
            centre = pose.to_image(side * 0.38, -0.24)
            _ellipse(img, centre, (0.25 * pose.rx, 0.08 * pose.ry), pose.roll_deg, (35, 25, 20))


def draw_character(ch: SyntheticCharacter, rng: np.random.Generator, max_roll_deg: float) -> tuple[np.ndarray, list[float]]:
    """One 256x256 RGBA image of ``ch`` and its head box [x0, y0, x1, y1] in pixels."""
    r = ch.scale * float(rng.uniform(0.85, 1.15))
    pose = Pose(
        cx=SIZE / 2 + float(rng.uniform(-0.25, 0.25)) * SIZE,
        cy=SIZE * float(rng.uniform(0.25, 0.45)),
        rx=r,
        ry=r * ch.face_ratio,
        roll_deg=float(rng.uniform(-max_roll_deg, max_roll_deg)),
        mouth_open=float(rng.uniform(0.0, 0.6)),
    )
    rgb = np.zeros((SIZE, SIZE, 3), np.uint8)
    alpha = np.zeros((SIZE, SIZE), np.uint8)
    for centre, axes, colour in _body_shapes(ch, pose):
        _ellipse(rgb, centre, axes, 0.0, colour)
        _ellipse(alpha, centre, axes, 0.0, 255)
    # The head and its hair cap (draw_face paints both; the mask follows their outline).
    _ellipse(alpha, (pose.cx, pose.cy), (pose.rx * 1.02, pose.ry * 1.02), pose.roll_deg, 255)
    _ellipse(alpha, pose.to_image(0, -0.35), (1.08 * pose.rx, 0.77 * pose.ry), pose.roll_deg, 255, 180, 360)
    style = STYLES[ch.style]
    draw_face(rgb, pose, ch.colours, style)
    _draw_extras(rgb, ch, pose)
    rgb = style.finish(rgb)
    x0, y0, x1, y1 = pose.box()
    box = [max(0.0, x0), max(0.0, y0), min(float(SIZE), x1), min(float(SIZE), y1)]
    return np.dstack([rgb, alpha]), [round(v, 2) for v in box]


def png_bytes(rgba: np.ndarray) -> bytes:
    """Encode an RGBA array as PNG."""
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG")
    return buf.getvalue()


def character_rows(ch: SyntheticCharacter, config: FaceDatasetConfig) -> list[dict]:
    """The render-contract rows of one character (one per image)."""
    rows = []
    for index in range(config.images_per_character):
        seed = int(np.random.SeedSequence([config.seed, index, *ch.model_id.encode()]).generate_state(1)[0])
        rgba, box = draw_character(ch, np.random.default_rng(seed), config.max_roll_deg)
        meta = {
            "kind": "render",
            "model_id": ch.model_id,
            "model_name": ch.model_id,
            "split": ch.split,
            "partition": "frontal",
            "style": "flat_cel" if ch.style == "2d" else "soft_shaded",
            "pose": [0.0] * POSE_SIZE,
            "morphs": {},
            "light_intensity": 1.0,
            "face_bbox": box,
            "engine": "synthetic",
            "samples": 1,
            "seed": seed,
            "labels": {"gender": ch.gender, "age_group": ch.age_group},
        }
        rows.append({"__key__": make_key(ch.model_id, index), "__split__": ch.split, "png": png_bytes(rgba), "json": meta})
    for row in rows:
        row["__input__"], row["__input_rows__"] = ch.model_id, len(rows)
    return rows


def write_face_dataset(out_url: str, config: FaceDatasetConfig = FaceDatasetConfig()) -> list[ShardStats]:
    """Write the labelled synthetic renders under ``out_url`` as committed shards, then its dataset.json."""
    started = utc_now()
    out = open_location(out_url)
    out.ensure_writable()
    characters = make_characters(config)
    with ShardedWriter(out, SequentialAllocator(), ShardLimits(max_samples=500), writer_id="synthetic-faces") as writer:
        for ch in characters:
            writer.write_all(character_rows(ch, config))
    # Like every dataset the factory writes: config, versions, inputs (one per character), counts.
    inputs = [(ch.model_id, f"synthetic:{ch.model_id}") for ch in characters]
    finalize(out, "synthetic-faces", asdict(config), inputs=inputs, started=started)
    return writer.committed
