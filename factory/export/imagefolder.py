"""`imagefolder` layout: ``DIR/{class}/{key}.png|jpg`` for torchvision's ImageFolder.

Every face image of a sample is written: a render's ``png``, a track's or a
character's first face as ``{key}.jpg`` and its further faces as
``{key}_{n}.jpg``. Samples without the class field are skipped and counted.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from factory.export.options import ExportOptions, class_of
from factory.export.source import ExportError, extension, face_members, read_samples
from factory.export.target import write_file
from factory.storage import Location

KINDS = ("render", "video_face", "character")


def write(data: Location, root: Path, options: ExportOptions) -> dict[str, Any]:
    """Write the class folders; returns images per class and samples skipped."""
    per_class: Counter = Counter()
    skipped = 0
    for sample in read_samples(data, KINDS):
        label = class_of(sample, options.class_by)
        if label is None:
            skipped += 1
            continue
        for n, member in enumerate(face_members(sample)):
            stem = sample.key if n == 0 else f"{sample.key}_{n}"
            write_file(root, f"{label}/{stem}.{extension(member)}", sample.members[member])
            per_class[label] += 1
    if not per_class:
        raise ExportError(f"no sample has a {options.class_by or 'class'} field to file it under")
    return {"classes": dict(sorted(per_class.items())), "skipped_without_class": skipped}
