"""A user's corrections of the automatic grouping, as a CSV applied on rerun.

Header ``action,subject,target,name``; one correction per row, applied in
file order after clustering:

- ``merge,SUBJECT,TARGET,``: SUBJECT's character joins TARGET's;
- ``split,TRACK_KEY,,[NAME]``: the track leaves its character and becomes a new one;
- ``name,SUBJECT,,NAME``: SUBJECT's character is called NAME.

SUBJECT and TARGET are track keys (``{video_id}_t_{NNN}``, see tracks.parquet)
or character ids of the automatic grouping (``{scope}_c_{NNN}`` of a run
without corrections). A row naming an unknown track or character is an error
that names its line.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

ACTIONS = ("merge", "split", "name")
COLUMNS = ("action", "subject", "target", "name")


@dataclass(frozen=True)
class Correction:
    """One CSV row."""

    line: int
    action: str
    subject: str
    target: str = ""
    name: str = ""


def parse_corrections(text: str) -> list[Correction]:
    """Rows of a corrections CSV; ValueError naming the line on a bad row."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or [f.strip() for f in reader.fieldnames[:4]] != list(COLUMNS):
        raise ValueError(f"corrections CSV must start with the header {','.join(COLUMNS)}")
    out = []
    for line, row in enumerate(reader, start=2):
        c = Correction(line, *((row.get(f) or "").strip() for f in COLUMNS))
        if c.action not in ACTIONS:
            raise ValueError(f"corrections line {line}: action {c.action!r} is not one of {', '.join(ACTIONS)}")
        if not c.subject or (c.action == "merge" and not c.target) or (c.action == "name" and not c.name):
            raise ValueError(f"corrections line {line}: {c.action} needs subject{', target' if c.action == 'merge' else ''}{', name' if c.action == 'name' else ''}")
        out.append(c)
    return out


def apply_corrections(
    corrections: list[Correction], track_keys: list[str], labels: np.ndarray, auto_ids: list[str]
) -> tuple[np.ndarray, dict[int, str]]:
    """Corrected labels (new labels for splits) and names by label.

    ``auto_ids[label]`` is the automatic grouping's character id of each label,
    so a correction may name a character by that id.
    """
    labels = labels.copy()
    names: dict[int, str] = {}
    index = {k: i for i, k in enumerate(track_keys)}
    auto = {cid: n for n, cid in enumerate(auto_ids)}
    original = labels.copy()

    def label_of(ref: str, c: Correction) -> int:
        if ref in index:
            return int(labels[index[ref]])
        if ref in auto:  # the automatic character's first track leads it
            return int(labels[int(np.flatnonzero(original == auto[ref])[0])])
        raise ValueError(f"corrections line {c.line}: {ref!r} is neither a track key nor a character id")

    for c in corrections:
        if c.action == "merge":
            src, dst = label_of(c.subject, c), label_of(c.target, c)
            labels[labels == src] = dst
            if src in names:
                names.setdefault(dst, names.pop(src))
        elif c.action == "split":
            if c.subject not in index:
                raise ValueError(f"corrections line {c.line}: split needs a track key, not {c.subject!r}")
            new = int(labels.max()) + 1
            labels[index[c.subject]] = new
            if c.name:
                names[new] = c.name
        else:
            names[label_of(c.subject, c)] = c.name
    return labels, names
