"""One entry point for MMD model files: the reader is chosen by file extension."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from factory.sources.pmd import read_pmd
from factory.sources.pmx import PmxError, read_pmx
from factory.sources.pmx_model import PmxModel

READERS: dict[str, Callable[[Path], PmxModel]] = {".pmx": read_pmx, ".pmd": read_pmd}


def read_model(path: str | os.PathLike) -> PmxModel:
    """Read a .pmx or .pmd file (extension case ignored) into a PmxModel.

    Raises PmxError for malformed files and unknown extensions, OSError when the file cannot be read.
    """
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise PmxError(path.name, "file name", 0, f"unknown model extension '{path.suffix}'", "known: .pmx, .pmd")
    return reader(path)
