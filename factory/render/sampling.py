"""Seeded pose sampling and the train/test split, as AnimeCeleb does it.

Per image: for each part (eyes, eyebrows, mouth) one available target
semantic with weight U[0, 1]; for eyes and eyebrows also a side (both, left
or right) among those the model has; head yaw / pitch / roll U[-20, 20]
degrees (all 0 in the frontal partition); one directional light with
intensity U[0.3, 0.9]; one of four shader styles. A model with more than five
annotated targets gets 100 images, otherwise 20.

Randomness: image i of model m draws from its own generator, seeded from
(run seed, a blake2b digest of m, i) through numpy's SeedSequence. The same
model id therefore gives the same samples on every run, on every machine,
and any single image can be redone alone (its `seed`, 63 bits so it fits a
JSON int64, is recorded).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from factory.render.morphs import (
    PITCH,
    POSE_SIZE,
    ROLL,
    SEMANTIC_BY_NAME,
    SEMANTICS,
    TARGETS,
    YAW,
    Part,
    Side,
    pose_slots,
    target_for,
)

# Shader styles (the paper's S.1-S.4); scene.py keys its shader builders by these names.
STYLES: dict[str, str] = {
    "textured_toon": "S.1: textured toon shading",
    "flat_cel": "S.2: flat cel colours",
    "soft_shaded": "S.3: soft diffuse shading",
    "line_art": "S.4: line art",
}
PARTITIONS = ("frontal", "rotated")
PAPER_TEST_RATIO = 294 / (3319 + 294)  # AnimeCeleb: 3,319 train / 294 test models


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling settings; the defaults are AnimeCeleb's numbers."""

    run_seed: int = 0
    angle_range_deg: float = 20.0  # yaw, pitch, roll ~ U[-a, a]
    weight_range: tuple[float, float] = (0.0, 1.0)
    light_range: tuple[float, float] = (0.3, 0.9)
    images_rich: int = 100  # images for a model with more than `rich_threshold` targets
    images_poor: int = 20
    rich_threshold: int = 5
    images_per_model: int | None = None  # overrides the two above when set
    frontal_fraction: float = 0.5  # share of images in the frontal (angles 0) partition
    styles: tuple[str, ...] = tuple(STYLES)
    test_ratio: float = PAPER_TEST_RATIO
    split_salt: str = "animeceleb"  # changes the split independently of run_seed

    def __post_init__(self) -> None:
        unknown = [s for s in self.styles if s not in STYLES]
        if unknown or not self.styles:
            raise ValueError(f"unknown or no shader styles {unknown}; known: {sorted(STYLES)}")
        for name in ("weight_range", "light_range"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} must satisfy 0 <= low <= high, got {(low, high)}")
        if self.angle_range_deg < 0:
            raise ValueError(f"angle_range_deg must be >= 0, got {self.angle_range_deg}")
        if not 0 <= self.frontal_fraction <= 1 or not 0 <= self.test_ratio <= 1:
            raise ValueError("frontal_fraction and test_ratio must lie in [0, 1]")
        counts = (self.images_rich, self.images_poor, self.images_per_model or 0)
        if min(counts) < 0:
            raise ValueError(f"image counts must be >= 0, got {counts}")


@dataclass(frozen=True)
class PoseSample:
    """One image's sampled parameters (the render sample's json fields)."""

    index: int
    seed: int
    partition: str
    style: str
    light_intensity: float
    morphs: dict[str, float]  # target -> weight, the targets actually applied
    pose: tuple[float, ...]  # POSE_SIZE floats: 17 morph slots, then yaw, pitch, roll

    def metadata(self) -> dict:
        """JSON-ready fields for the render sample.

        ``morphs`` names every target (0.0 where not applied) and
        ``applied`` the targets set: one json shape for every sample, so
        readers that infer a schema from a few samples (Hugging Face
        ``datasets``) see every field.
        """
        return {
            "pose": list(self.pose),
            "morphs": {target: float(self.morphs.get(target, 0.0)) for target in TARGETS},
            "applied": sorted(self.morphs),
            "partition": self.partition,
            "style": self.style,
            "light_intensity": self.light_intensity,
            "seed": self.seed,
        }


def _id_words(model_id: str) -> list[int]:
    """A stable 128-bit digest of the id as four uint32 words (not Python's salted hash())."""
    digest = hashlib.blake2b(model_id.encode("utf-8"), digest_size=16).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


SEED_BITS = 63  # a recorded seed is a JSON integer that fits int64 (Arrow, pandas, HF datasets)


def sample_seed(run_seed: int, model_id: str, index: int) -> int:
    """The 63-bit seed of image `index` of `model_id` under `run_seed`.

    The top bit of the 64-bit state is dropped, so seeds below 2**63 are
    unchanged from earlier releases and the others lose their top bit.
    """
    sequence = np.random.SeedSequence([run_seed, *_id_words(model_id), index])
    return int(sequence.generate_state(1, np.uint64)[0]) & ((1 << SEED_BITS) - 1)


def images_for(n_targets: int, config: SamplingConfig) -> int:
    """How many images a model gets: the override, else 100 with > 5 targets, else 20."""
    if config.images_per_model is not None:
        return config.images_per_model
    return config.images_rich if n_targets > config.rich_threshold else config.images_poor


def partition_of(index: int, config: SamplingConfig) -> str:
    """Frontal or rotated, spread evenly: exactly round-down(n * fraction) frontal in any first n."""
    f = config.frontal_fraction
    return "frontal" if int((index + 1) * f) > int(index * f) else "rotated"


def _options(available: Collection[str]) -> dict[Part, list[tuple[str, list[Side]]]]:
    """Per part: the semantics the model has and, for each, the sides it can show.

    BOTH is possible with a both-target or with a left and a right target applied together.
    """
    options: dict[Part, list[tuple[str, list[Side]]]] = {part: [] for part in Part}
    for s in SEMANTICS:
        sides = [side for side in Side if _targets_for_side(s.name, side, available) is not None]
        if sides:
            options[s.part].append((s.name, sides))
    return options


def _targets_for_side(semantic: str, side: Side, available: Collection[str]) -> tuple[str, ...] | None:
    """The targets to apply for a semantic on a side, or None when the model lacks them."""
    if not SEMANTIC_BY_NAME[semantic].sided:
        return (semantic,) if side is Side.BOTH and semantic in available else None
    own = target_for(semantic, side)
    if own in available:
        return (own,)
    pair = (target_for(semantic, Side.LEFT), target_for(semantic, Side.RIGHT))
    if side is Side.BOTH and all(t in available for t in pair):
        return pair
    return None


def sample_pose(seed: int, index: int, available: Collection[str], config: SamplingConfig) -> PoseSample:
    """Draw one image's parameters from `seed` (a fixed number of draws in a fixed order)."""
    rng = np.random.default_rng(seed)
    options = _options(available)
    morphs: dict[str, float] = {}
    pose = np.zeros(POSE_SIZE, dtype=np.float64)
    for part in Part:
        if not options[part]:
            continue
        semantic, sides = options[part][rng.integers(len(options[part]))]
        side = sides[rng.integers(len(sides))]
        weight = float(rng.uniform(*config.weight_range))
        for target in _targets_for_side(semantic, side, available):
            morphs[target] = weight
            pose[list(pose_slots(target))] = weight
    a = config.angle_range_deg
    angles = rng.uniform(-a, a, size=3)  # drawn for every image so the streams stay aligned
    partition = partition_of(index, config)
    if partition == "rotated":
        pose[[YAW, PITCH, ROLL]] = angles
    light = float(rng.uniform(*config.light_range))
    style = config.styles[rng.integers(len(config.styles))]
    return PoseSample(index, seed, partition, style, light, morphs, tuple(float(x) for x in pose))


def sample_poses(model_id: str, available: Collection[str], config: SamplingConfig) -> list[PoseSample]:
    """All samples of one model: `images_for(len(available))` of them, reproducible per model id."""
    unknown = set(available) - set(TARGETS)
    if unknown:
        raise ValueError(f"unknown target morphs {sorted(unknown)}")
    n = images_for(len(available), config)
    return [sample_pose(sample_seed(config.run_seed, model_id, i), i, available, config) for i in range(n)]


def split_of(model_id: str, config: SamplingConfig) -> str:
    """'train' or 'test' for a model, by a stable hash of its id: same answer on every run."""
    digest = hashlib.blake2b(f"{config.split_salt}\0{model_id}".encode("utf-8"), digest_size=8).digest()
    return "test" if int.from_bytes(digest, "little") / 2**64 < config.test_ratio else "train"

