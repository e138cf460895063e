"""Settings every layout receives, and the class a sample belongs to."""

from __future__ import annotations

import re
from dataclasses import dataclass

from factory.export.source import ExportSample

# The class of a sample when --class-by is not given: its identity.
DEFAULT_CLASS_BY = {"render": "model_id", "character": "character_id", "video_face": "character_id"}
_UNSAFE = re.compile(r"[^\w+\-]+")


@dataclass(frozen=True)
class ExportOptions:
    """``class_by``: json field or label naming a sample's class (None: its identity)."""

    class_by: str | None = None
    seed: int = 0  # yolo: backgrounds and the held-out identities
    test_fraction: float = 0.15  # yolo: held-out identities when the data has no test split

    def __post_init__(self) -> None:
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError("--test-fraction must lie in (0, 1)")


def folder_name(value: object) -> str:
    """A class value as one safe folder name (``20+`` stays, ``a/b`` becomes ``a_b``)."""
    return _UNSAFE.sub("_", str(value)).strip("_") or "_"


def class_of(sample: ExportSample, class_by: str | None) -> str | None:
    """The sample's class folder, or None when it lacks that field (never guessed)."""
    value = sample.field(class_by or DEFAULT_CLASS_BY[sample.kind])
    return None if value in (None, "") else folder_name(value)
