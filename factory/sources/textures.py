"""Safe resolution of texture paths found inside model files.

A PMX texture path is untrusted text, usually written on Windows:
``tex\\Face.PNG`` relative to the .pmx file. `TextureResolver` maps such a
path onto a regular file inside the model's folder, or says why it cannot:

- rejected: absolute paths, drive letters (``C:\\``, ``C:x``), UNC paths
  (``\\\\host\\share``), any ``..`` component, colons, NUL bytes, and symbolic
  links (never followed, so they cannot lead out of the folder);
- tolerated: backslashes, ``./`` components, and letter-case or Unicode
  normalisation differences (matched against the real directory listings).

Resolution only lists directories inside the model folder and lstats the
entries it walks through; it never opens a file and never touches a path
outside the folder. The renderer falls back to the material colour for every
texture that does not resolve and lists the reason in the sample metadata.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TextureResolution", "TextureResolver", "resolve_textures"]

_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class TextureResolution:
    """Outcome for one texture path: `path` when usable, else None and a `reason`."""

    raw: str
    path: Path | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.path is not None


def _fold(name: str) -> str:
    """Key for case- and normalisation-insensitive name matching."""
    return unicodedata.normalize("NFC", name).casefold()


def _unsafe_reason(raw: str) -> str | None:
    """Why a raw path may not be followed at all (checked before any file system call)."""
    if "\x00" in raw:
        return "rejected: NUL byte in path"
    slashed = raw.replace("\\", "/")
    if slashed.startswith("//"):
        return "rejected: UNC path"
    if slashed.startswith("/"):
        return "rejected: absolute path"
    if _DRIVE.match(slashed):
        return "rejected: drive letter"
    if ":" in slashed:
        return "rejected: colon in path"  # URL schemes, NTFS streams
    if any(part.strip() == ".." for part in slashed.split("/")):
        return "rejected: '..' component"
    return None


class TextureResolver:
    """Resolves texture paths of one model folder (directory listings are cached)."""

    def __init__(self, model_dir: str | os.PathLike):
        self.root = Path(os.path.realpath(model_dir))
        self._listings: dict[Path, dict[str, list[str]]] = {}

    def _listing(self, folder: Path) -> dict[str, list[str]]:
        """Folded name -> real names in `folder` (a folder inside root)."""
        if folder not in self._listings:
            names: dict[str, list[str]] = {}
            try:
                entries = sorted(os.listdir(folder))
            except OSError:
                entries = []
            for entry in entries:
                names.setdefault(_fold(entry), []).append(entry)
            self._listings[folder] = names
        return self._listings[folder]

    def __call__(self, raw: str) -> TextureResolution:
        """Resolve one raw texture path from the model file."""
        if not raw.strip():
            return TextureResolution(raw, None, "missing: empty path")
        reason = _unsafe_reason(raw)
        if reason:
            return TextureResolution(raw, None, reason)
        parts = [p for p in raw.replace("\\", "/").split("/") if p not in ("", ".")]
        current, mode = self.root, 0
        for part in parts:
            matches = self._listing(current).get(_fold(part), [])
            if not matches:
                where = current.relative_to(self.root).as_posix()
                return TextureResolution(raw, None, f"missing: no '{part}' in '{where}'")
            current = current / (part if part in matches else matches[0])  # exact case wins
            mode = os.lstat(current).st_mode
            if stat.S_ISLNK(mode):  # never followed: a link could lead anywhere
                return TextureResolution(raw, None, "rejected: symbolic link in path")
        if not stat.S_ISREG(mode):
            return TextureResolution(raw, None, "missing: not a regular file")
        return TextureResolution(raw, current)


def resolve_textures(textures: Sequence[str], model_dir: str | os.PathLike) -> tuple[TextureResolution, ...]:
    """Resolve every texture path of a model (e.g. `PmxModel.textures`), in order."""
    resolver = TextureResolver(model_dir)
    return tuple(resolver(raw) for raw in textures)
