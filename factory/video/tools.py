"""The system tools the video stages call (ffmpeg, ffprobe, espeak-ng), found on PATH."""

from __future__ import annotations

import shutil


def require_tool(name: str) -> str:
    """The executable's path; a one-line error naming the install script when it is missing."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found; run scripts/install-system-deps.sh")
    return path
