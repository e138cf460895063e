"""Face samples for training: read them from committed shards, split them by identity.

The detector reads ``kind="render"`` samples (``png`` RGBA + ``json`` with
``face_bbox``, ``model_id``, ``split``); the classifier also reads video face
tracks (``kind="video_face"``: the aligned ``jpg`` is the face, the identity is
video id + track id). Which member, box and identity a kind has is a registry
entry (``KINDS``). Splits are by identity so the test
images show characters the model never saw: the samples' own ``split`` field
when the data has both ``train`` and ``test`` (the render pipeline assigns it
per model), else a stable hash of ``model_id``.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from factory.shards import committed_stats, iter_samples
from factory.storage import Location, StorageConfig, open_location


class TrainingDataError(ValueError):
    """The dataset cannot train this model; the message says why in one line."""


@dataclass(frozen=True)
class FaceSample:
    """One sample: identity, split, image bytes, face box in image pixels (None: whole image)."""

    key: str
    model_id: str  # the identity: a render's model id, a video face's video + track
    split: str
    image: bytes
    box: tuple[float, float, float, float] | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def face_bbox(self) -> tuple[float, float, float, float]:
        """The face box; the whole image when the sample is itself a face crop."""
        if self.box is not None:
            return self.box
        w, h = Image.open(io.BytesIO(self.image)).size
        return 0.0, 0.0, float(w), float(h)

    @property
    def face_boxes(self) -> list[tuple[float, float, float, float]]:
        """Every labelled face of the image: the json's ``face_boxes`` when it lists
        several (procedural illustrations), else the one face box."""
        many = self.meta.get("face_boxes")
        if many or (many == [] and self.box is None):  # [] with no face box: an image of no face
            return [tuple(float(v) for v in box) for box in many]
        return [self.face_bbox]

    def rgba(self) -> np.ndarray:
        """The image as an HxWx4 uint8 array (alpha 255 when the image has none)."""
        return np.asarray(Image.open(io.BytesIO(self.image)).convert("RGBA"))


@dataclass(frozen=True)
class SampleKind:
    """Where one sample kind keeps its face image, box and identity."""

    member: str
    box_field: str | None  # json field of the face box in image pixels; None: the image is the face
    identity: tuple[str, ...]  # json fields joined into the identity


KINDS: dict[str, SampleKind] = {
    "render": SampleKind("png", "face_bbox", ("model_id",)),
    "video_face": SampleKind("jpg", None, ("video_id", "track_id")),
}


def _to_sample(raw: dict[str, Any], kinds: tuple[str, ...], faceless: bool) -> FaceSample | None:
    if "json" not in raw:
        return None
    meta = json.loads(raw["json"])
    kind = KINDS.get(meta.get("kind")) if meta.get("kind") in kinds else None
    if kind is None or kind.member not in raw:
        return None
    no_face = faceless and meta.get("face_boxes") == []
    if kind.box_field and not meta.get(kind.box_field) and not no_face:
        return None
    ident = "_".join(str(meta.get(f, "")) for f in kind.identity).strip("_")
    box = tuple(float(v) for v in meta[kind.box_field]) if kind.box_field and not no_face else None
    return FaceSample(raw["__key__"], ident or raw["__key__"], str(meta.get("split", "all")), raw[kind.member], box, meta)


def load_face_samples(
    data_url: str, kinds: tuple[str, ...] = ("render",), storage: StorageConfig | None = None, faceless: bool = False
) -> list[FaceSample]:
    """Every committed sample of the given kinds that has its image (and box), in shard order.

    ``faceless`` also keeps the images that show no face (``face_boxes: []``, no
    ``face_bbox``): a detector's background images; a classifier has no use for them."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise TrainingDataError(f"unknown sample kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
    loc = open_location(data_url, storage)
    out = [s for raw in iter_samples(loc) if (s := _to_sample(raw, kinds, faceless)) is not None]
    if not out:
        raise TrainingDataError(f"no committed samples of kind {', '.join(kinds)} with a face in {loc.url}")
    return out


def load_face_samples_from(
    data_urls: list[str], kinds: tuple[str, ...] = ("render",), storage: StorageConfig | None = None,
    faceless: bool = False,
) -> list[FaceSample]:
    """`load_face_samples` of several datasets, in order; with more than one, keys
    get their dataset's position as prefix (``1-``), since two runs may reuse a key."""
    if len(data_urls) == 1:
        return load_face_samples(data_urls[0], kinds, storage, faceless)
    return [
        replace(s, key=f"{i}-{s.key}")
        for i, url in enumerate(data_urls)
        for s in load_face_samples(url, kinds, storage, faceless)
    ]


def _hash_unit(text: str, seed: int) -> float:
    digest = hashlib.blake2b(f"{seed}\0{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def identity_split(
    samples: list[FaceSample], test_fraction: float, seed: int
) -> dict[str, list[FaceSample]]:
    """``{"train": [...], "test": [...]}`` with no identity on both sides.

    Uses the samples' own split when both sides are present; otherwise holds
    out about ``test_fraction`` of the identities by a stable hash.
    """
    own = {s.split for s in samples}
    if {"train", "test"} <= own:
        side = {s.key: s.split for s in samples}
    else:
        ids = sorted({s.model_id for s in samples})
        if len(ids) < 2:
            raise TrainingDataError(f"need at least 2 identities to hold one out, found {len(ids)}")
        ranked = sorted(ids, key=lambda i: _hash_unit(i, seed))
        n_test = min(len(ids) - 1, max(1, round(len(ids) * test_fraction)))
        held = set(ranked[:n_test])
        side = {s.key: "test" if s.model_id in held else "train" for s in samples}
    return {name: [s for s in samples if side[s.key] == name] for name in ("train", "test")}


def data_provenance(data_url: str, storage: StorageConfig | None = None) -> dict[str, Any]:
    """The dataset URL and its shard commit (committed shard names and stats)."""
    loc: Location = open_location(data_url, storage)
    return {"data_url": loc.url, "shards": [{"name": s.name, **asdict(s)} for s in committed_stats(loc)]}
