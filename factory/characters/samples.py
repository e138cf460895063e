"""Character samples: one per character, 1-5 faces and 1-3 voice clips from its member tracks.

Faces: the most frontal track face first, then farthest-point sampling on the
face embeddings (most diverse), with a bonus for a track not yet used, so the
faces come from different tracks where possible. Voices: the longest clips of
different tracks (each 3-19 s already, cut by the video pipeline).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from factory.members import FACES, VOICE, pack_faces, pack_voices

MAX_FACES = 5
MAX_VOICES = 3
NEW_TRACK_BONUS = 0.5  # added to a candidate's distance when its track gave no face yet


@dataclass
class TrackSample:
    """One video_face sample as the characters stage reads it."""

    key: str
    meta: dict[str, Any]
    faces: list[bytes]  # jpg, face1.jpg, ... (JPEG bytes)
    wav: bytes | None
    face_embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def video_id(self) -> str:
        return str(self.meta.get("video_id"))


def _face_record(track: TrackSample, i: int, file: str) -> dict[str, Any]:
    m = track.meta
    times, frames, kinds = m.get("face_times") or [], m.get("face_frames") or [], m.get("face_frame_kinds") or []
    first = i == 0  # the video pipeline measures only the track's best (first) face
    return {
        "track_key": track.key,
        "video_id": track.video_id,
        "face_time_s": times[i] if i < len(times) else (m.get("face_time_s") if first else None),
        "frame_index": frames[i] if i < len(frames) else None,
        "frame_kind": kinds[i] if i < len(kinds) else None,  # k = key frame, p = other (gochiusa names)
        "yaw": m.get("yaw") if first else None,
        "frontal_score": m.get("frontal_score") if first else None,
        "file": file,
    }


def choose_faces(tracks: list[TrackSample], limit: int = MAX_FACES) -> list[tuple[int, int]]:
    """(track index, face index) of the chosen faces: most frontal first, then most diverse."""
    candidates = [(t, f) for t, tr in enumerate(tracks) for f in range(len(tr.faces))]
    if not candidates:
        return []
    first = max(range(len(tracks)), key=lambda t: tracks[t].meta.get("frontal_score") or 0.0)
    chosen = [(first, 0)]
    while len(chosen) < min(limit, len(candidates)):
        chosen.append(max((c for c in candidates if c not in chosen), key=lambda c: _novelty(tracks, chosen, c)))
    return chosen


def _novelty(tracks: list[TrackSample], chosen: list[tuple[int, int]], candidate: tuple[int, int]) -> float:
    """Cosine distance to the nearest chosen face, plus a bonus for a track not chosen yet."""
    e = tracks[candidate[0]].face_embeddings[candidate[1]]
    d = min(1.0 - float(e @ tracks[t].face_embeddings[f]) for t, f in chosen)
    return d + (NEW_TRACK_BONUS if all(t != candidate[0] for t, _ in chosen) else 0.0)


def _majority(values: list[str]) -> str | None:
    return collections.Counter(values).most_common(1)[0][0] if values else None


def character_row(
    character_id: str,
    scope: str,
    members: list[TrackSample],
    confidence: float,
    name: str | None,
    embedding: dict[str, Any],
) -> dict[str, Any]:
    """The sample of one character (fields and json of the character contract, docs/CHARACTERS.md)."""
    # Members: `jpg` (first face), `faces.jpg` (all of them side by side) and `voice` (the clips
    # back to back, b"" for none), the same set for every character (factory/members.py).
    # `file` names a face's or clip's member as factory.members.unpack gives it back.
    chosen = choose_faces(members)
    faces = [_face_record(members[t], f, "jpg" if n == 0 else f"face{n}.jpg") for n, (t, f) in enumerate(chosen)]
    row: dict[str, Any] = {"__key__": character_id, "jpg": members[chosen[0][0]].faces[chosen[0][1]],
                           FACES: pack_faces([members[t].faces[f] for t, f in chosen])}
    voiced = sorted((m for m in members if m.wav), key=lambda m: -((m.meta.get("audio") or {}).get("duration_s") or 0.0))
    row[VOICE], spans = pack_voices([track.wav for track in voiced[:MAX_VOICES]])
    voices = [
        {"track_key": track.key, "duration_s": (track.meta.get("audio") or {}).get("duration_s"),
         "file": "wav" if n == 0 else f"voice{n}.wav", "start_frame": start, "frames": frames}
        for n, (track, (start, frames)) in enumerate(zip(voiced, spans))
    ]
    info: dict[str, Any] = {
        "kind": "character",
        "character_id": character_id,
        "name": name,
        "scope": scope,
        "video_ids": sorted({m.video_id for m in members}),
        "tracks": [m.key for m in members],
        "confidence": round(confidence, 4),
        "n_tracks": len(members),
        "faces": faces,
        "voices": voices,
        "audio_s": round(float(sum(v["duration_s"] or 0.0 for v in voices)), 3),  # float even with no voice
        "style": _majority([m.meta["style"] for m in members if m.meta.get("style")]),
        "embedding": embedding,
    }
    # Both tasks always present (None when no member track has that label): one json shape.
    info["labels"] = {
        task: _majority([m.meta["labels"][task] for m in members if (m.meta.get("labels") or {}).get(task)])
        for task in ("gender", "age_group")
    }
    row["json"] = info
    return row
