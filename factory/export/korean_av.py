"""`korean-av` layout: one folder per character with its faces and voice clips, and a CSV.

After the Korean audio-visual dataset of 3D animation characters (1-5
frontal faces and 1-3 voice clips of 3-19 s per character, labelled with
gender and age group)::

    DIR/{character_id}/face1.jpg .. faceN.jpg, voice1.wav .. voiceM.wav
    DIR/characters.csv   character, gender, age_group, n_faces, n_clips, seconds, name

``seconds`` is the clips' total length read from the WAV headers. A label the
data does not have stays an empty cell: never guessed. A clip that is not a
readable WAV is left out and counted (``bad_clips``); the rest goes on.
"""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

from factory.export.options import ExportOptions, folder_name
from factory.export.source import (
    ExportError,
    ExportSample,
    extension,
    face_members,
    read_samples,
    voice_members,
)
from factory.export.target import write_csv, write_file
from factory.storage import Location

KINDS = ("character",)
CSV_NAME = "characters.csv"
COLUMNS = ("character", "gender", "age_group", "n_faces", "n_clips", "seconds", "name")


def wav_seconds(data: bytes) -> float | None:
    """Length of a WAV clip in seconds, from its header; None when it is not a readable WAV."""
    try:
        with wave.open(io.BytesIO(data)) as clip:
            return clip.getnframes() / clip.getframerate()
    except (wave.Error, EOFError, ZeroDivisionError):
        return None


def _write_character(root: Path, sample: ExportSample, bad_clips: list[str]) -> list[Any]:
    folder = folder_name(sample.meta.get("character_id") or sample.key)
    faces = face_members(sample)
    for n, member in enumerate(faces, start=1):
        write_file(root, f"{folder}/face{n}.{extension(member)}", sample.members[member])
    lengths = {m: wav_seconds(sample.members[m]) for m in voice_members(sample)}
    bad_clips += [f"{sample.key}.{m}" for m, s in lengths.items() if s is None]
    voices = [m for m, s in lengths.items() if s is not None]
    for n, member in enumerate(voices, start=1):
        write_file(root, f"{folder}/voice{n}.wav", sample.members[member])
    labels = sample.meta.get("labels") or {}
    return [folder, labels.get("gender") or "", labels.get("age_group") or "", len(faces), len(voices),
            f"{sum(lengths[m] for m in voices):.3f}", sample.meta.get("name") or ""]


def write(data: Location, root: Path, options: ExportOptions) -> dict[str, Any]:
    """Write the character folders and ``characters.csv``; returns the counts."""
    bad_clips: list[str] = []
    rows = [_write_character(root, sample, bad_clips) for sample in read_samples(data, KINDS)]
    if not rows:
        raise ExportError("no character sample to export")
    write_csv(root, CSV_NAME, COLUMNS, sorted(rows))
    return {"characters": len(rows), "faces": sum(r[3] for r in rows), "clips": sum(r[4] for r in rows),
            "bad_clips": bad_clips}
