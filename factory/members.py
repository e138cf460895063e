"""Packed face and voice members: one member set for every sample of a kind.

Readers that infer a schema from a few samples (Hugging Face ``datasets``)
need every sample of a kind to hold the same members, and a ``wav`` member
makes them ask for an audio backend. So a face track or a character sample
keeps its variable parts in two always-present members:

- ``faces.jpg``: every face of the sample side by side, left to right, each
  ``side`` x ``side`` (the first is also ``jpg``); ``json`` lists them
  (``face_times`` / ``faces``), so the count is ``width // height``;
- ``voice``: the voice clips back to back as one 16 kHz mono PCM16 WAV, or
  empty bytes when the sample has no speech; a character's ``json.voices[i]``
  gives each clip's ``start_frame`` and ``frames`` in it.

:func:`unpack` turns such a sample back into the members of releases before
the packing (``jpg``, ``face1.jpg``.., ``wav``, ``voice1.wav``..), which is
what the project's own readers (export, characters, report) work on; a
sample written in that older layout passes through unchanged.
"""

from __future__ import annotations

import io
import wave
from typing import Any

import cv2
import numpy as np

FACES, VOICE = "faces.jpg", "voice"


def _decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("a face is not a readable JPEG")
    return image


def _encode(image: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def pack_faces(jpegs: list[bytes], quality: int = 95) -> bytes:
    """The ``faces.jpg`` strip of square face JPEGs (all of one side), left to right."""
    images = [_decode(j) for j in jpegs]
    side = images[0].shape[0]
    if any(im.shape[:2] != (side, side) for im in images):
        raise ValueError(f"faces must all be {side}x{side} to share a strip")
    # Sides are multiples of 16 (crop sizes), so JPEG blocks never straddle two faces.
    return _encode(np.hstack(images), quality)


def unpack_faces(strip: bytes, quality: int = 95) -> list[bytes]:
    """The faces of a ``faces.jpg`` strip, one JPEG each."""
    image = _decode(strip)
    side = image.shape[0]
    return [_encode(image[:, x : x + side], quality) for x in range(0, image.shape[1] - side + 1, side)]


def wav_frames(data: bytes) -> np.ndarray:
    """The PCM16 samples of a mono WAV."""
    with wave.open(io.BytesIO(data)) as clip:
        return np.frombuffer(clip.readframes(clip.getnframes()), "<i2")


def _wav(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


def pack_voices(clips: list[bytes]) -> tuple[bytes, list[tuple[int, int]]]:
    """The ``voice`` member of WAV clips (one rate, mono PCM16) and each clip's (start_frame, frames)."""
    if not clips:
        return b"", []
    with wave.open(io.BytesIO(clips[0])) as first:
        rate = first.getframerate()
    parts, spans, start = [], [], 0
    for clip in clips:
        samples = wav_frames(clip)
        parts.append(samples)
        spans.append((start, len(samples)))
        start += len(samples)
    return _wav(np.concatenate(parts), rate), spans


def unpack_voices(data: bytes, spans: list[tuple[int, int]] | None = None) -> list[bytes]:
    """The clips of a ``voice`` member: the whole WAV, or one WAV per (start_frame, frames)."""
    if not data:
        return []
    if not spans:
        return [data]
    with wave.open(io.BytesIO(data)) as clip:
        rate = clip.getframerate()
    samples = wav_frames(data)
    return [_wav(samples[start : start + frames], rate) for start, frames in spans]


def unpack(sample: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The sample's members in the pre-packing layout (``jpg``, ``face{n}.jpg``, ``wav``, ``voice{n}.wav``)."""
    out = {k: v for k, v in sample.items() if k not in (FACES, VOICE)}
    if FACES in sample:
        for n, face in enumerate(unpack_faces(sample[FACES])[1:], start=1):
            out[f"face{n}.jpg"] = face
    if VOICE in sample:
        spans = [(v["start_frame"], v["frames"]) for v in meta.get("voices") or [] if "frames" in v]
        for n, clip in enumerate(unpack_voices(sample[VOICE], spans)):
            out["wav" if n == 0 else f"voice{n}.wav"] = clip
    return out
