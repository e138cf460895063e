"""`gochiusa` layout: ``DIR/{character}/{video}-{k|p}-{frame}-{face}.png``, unresized.

GochiUsa_Faces names each face ``{filename}-{frame_type}-{i}-{j}.png``: the
video, ``k`` for a key frame or ``p`` for a P-frame, the frame and the face
within the frame. Ours, from the fields the video pipeline records:

- ``video``: the video id;
- ``k|p``: ``face_frame_kinds`` (``k`` when decord lists the frame as a key
  frame, ``p`` for any other frame);
- ``frame``: the source frame index (``face_frames``), not GochiUsa's
  P-frame counter;
- ``face``: the track number, unique within the video, so two faces of one
  frame never share a name.

"Unresized" means the stored aligned crop (``crop_size`` pixels, eye line
level) re-encoded as PNG without any further resize. A face lacking its
frame index or kind, or an image that does not decode, is skipped and
counted, never given a made-up name.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

from factory.export.options import ExportOptions, class_of, folder_name
from factory.export.source import ExportError, ExportSample, face_members, read_samples
from factory.export.target import write_file
from factory.storage import Location

KINDS = ("character", "video_face")
_TRACK_NUMBER = re.compile(r"_t_(\d+)$")


class Face(NamedTuple):
    member: str
    video_id: str
    frame: int | None
    frame_kind: str | None
    face: int | None


def _track_faces(sample: ExportSample) -> Iterator[Face]:
    frames, kinds = sample.meta.get("face_frames") or [], sample.meta.get("face_frame_kinds") or []
    for n, member in enumerate(face_members(sample)):
        yield Face(
            member,
            str(sample.meta.get("video_id", "")),
            frames[n] if n < len(frames) else None,
            kinds[n] if n < len(kinds) else None,
            sample.meta.get("track_id"),
        )


def _character_faces(sample: ExportSample) -> Iterator[Face]:
    for entry in sample.meta.get("faces") or []:
        if entry.get("file") not in sample.members:
            continue
        number = _TRACK_NUMBER.search(str(entry.get("track_key", "")))
        yield Face(
            entry["file"],
            str(entry.get("video_id", "")),
            entry.get("frame_index"),
            entry.get("frame_kind"),
            int(number.group(1)) if number else None,
        )


_FACES = {"video_face": _track_faces, "character": _character_faces}


def face_name(face: Face) -> str | None:
    """``{video}-{k|p}-{frame}-{face}.png``, or None when a part is unknown."""
    if face.frame is None or face.frame_kind not in ("k", "p") or face.face is None or not face.video_id:
        return None
    return f"{folder_name(face.video_id)}-{face.frame_kind}-{int(face.frame)}-{int(face.face)}.png"


def as_png(image: bytes) -> bytes | None:
    """The image re-encoded as PNG at its own size; None when it does not decode."""
    decoded = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_UNCHANGED)
    return None if decoded is None else cv2.imencode(".png", decoded)[1].tobytes()


def write(data: Location, root: Path, options: ExportOptions) -> dict[str, Any]:
    """Write the per-character folders; returns faces per character and faces skipped."""
    per_class: Counter = Counter()
    skipped = Counter()
    for sample in read_samples(data, KINDS):
        label = class_of(sample, options.class_by)
        if label is None:
            skipped["without_class"] += 1
            continue
        for face in _FACES[sample.kind](sample):
            name = face_name(face)
            if name is None:
                skipped["faces_without_frame"] += 1
                continue
            png = as_png(sample.members[face.member])
            if png is None:
                skipped["faces_not_decoding"] += 1
                continue
            write_file(root, f"{label}/{name}", png)
            per_class[label] += 1
    if not per_class:
        raise ExportError(f"no face has a class, a frame index and a k/p kind (skipped: {dict(skipped)})")
    return {"faces": dict(sorted(per_class.items())), "skipped": dict(sorted(skipped.items()))}
