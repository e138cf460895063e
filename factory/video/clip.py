"""Talking-face clips (AniVid, method C): square face crops at source fps -> an mp4.

Frames stream into ffmpeg one at a time (H.264, yuv420p), optionally muxed
with the span's audio (AAC), so a clip never sits in memory as raw frames.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from factory.video.audio import wav_bytes
from factory.video.tools import require_tool

Box = tuple[float, float, float, float]


def square_box(boxes: Iterable[Box], margin: float, width: int, height: int) -> tuple[int, int, int]:
    """One square (x0, y0, side) holding the median box of a track with a margin, inside the frame."""
    arr = np.asarray(list(boxes), dtype=np.float64)
    x0, y0, x1, y1 = np.median(arr, axis=0)
    side = int(min(round(margin * max(x1 - x0, y1 - y0)), width, height))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(min(max(cx - side / 2, 0), width - side)))
    top = int(round(min(max(cy - side / 2, 0), height - side)))
    return left, top, max(side, 2)


def encode_clip(
    frames: Iterable[np.ndarray],
    fps: float,
    size: int,
    audio: np.ndarray | None = None,
    sample_rate: int = 16_000,
) -> bytes:
    """Encode RGB crops (any size, resized to size x size) as mp4 bytes at `fps`."""
    ffmpeg = require_tool("ffmpeg")
    with tempfile.TemporaryDirectory() as tmp:
        out, log = Path(tmp) / "clip.mp4", Path(tmp) / "ffmpeg.log"
        cmd = [ffmpeg, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}"]
        cmd += ["-r", f"{fps:.6f}", "-i", "pipe:0"]
        if audio is not None and len(audio):
            wav = Path(tmp) / "audio.wav"
            wav.write_bytes(wav_bytes(audio, sample_rate))
            cmd += ["-i", str(wav), "-c:a", "aac", "-b:a", "64k", "-shortest"]
        cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", str(out)]
        with open(log, "wb") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=err)
            for frame in frames:
                if frame.shape[:2] != (size, size):
                    frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
                proc.stdin.write(np.ascontiguousarray(frame).tobytes())
            proc.stdin.close()
            if proc.wait() != 0:
                raise RuntimeError(f"ffmpeg failed: {log.read_text(errors='replace').strip()[-200:]}")
        return out.read_bytes()
