"""Classifier tasks and where their labels come from.

The tasks are the source paper's (seed 000): gender (male / female / child)
and age group (0-9 / 10-19 / 20+). A sample's label is read from its json
(``labels.{task}``, else a top-level ``{task}`` field) unless a user CSV gives
it: the CSV is keyed by ``key`` (sample key) or ``model_id`` and has a column
per task; a CSV value wins over the json. A numeric ``age`` column is binned
into the age groups (the paper took the median of an age range).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from factory.train.data import FaceSample, TrainingDataError

TASKS: dict[str, tuple[str, ...]] = {
    "gender": ("male", "female", "child"),
    "age_group": ("0-9", "10-19", "20+"),
}
CSV_KEYS = ("key", "model_id")  # the columns a label CSV may be keyed by
_AGE_EDGES = ((10, "0-9"), (20, "10-19"))


def age_group_of(age: float) -> str:
    """Bin an age in years into the paper's groups."""
    for upper, group in _AGE_EDGES:
        if age < upper:
            return group
    return "20+"


def normalise(task: str, value: Any) -> str:
    """A label value as one of the task's classes; raises for anything else."""
    text = str(value).strip().lower()
    if text not in TASKS[task]:
        raise TrainingDataError(f"label {value!r} for {task} is not one of {', '.join(TASKS[task])}")
    return text


@dataclass(frozen=True)
class LabelTable:
    """Labels joined from a user CSV: ``by_key`` and ``by_model`` map to {task: class}."""

    by_key: Mapping[str, Mapping[str, str]]
    by_model: Mapping[str, Mapping[str, str]]

    @classmethod
    def empty(cls) -> "LabelTable":
        return cls({}, {})

    @classmethod
    def from_csv(cls, path: str | Path) -> "LabelTable":
        """Read a CSV keyed by ``key`` or ``model_id`` with ``gender`` / ``age_group`` / ``age`` columns."""
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = set(reader.fieldnames or ())
            key_col = next((c for c in CSV_KEYS if c in columns), None)
            if key_col is None:
                raise TrainingDataError(f"{path}: needs a 'key' or 'model_id' column, has {sorted(columns)}")
            if not columns & {*TASKS, "age"}:
                raise TrainingDataError(f"{path}: needs a column among {sorted({*TASKS, 'age'})}")
            table = {row[key_col]: _row_labels(row) for row in reader}
        return cls(table, {}) if key_col == "key" else cls({}, table)

    def lookup(self, sample: FaceSample) -> Mapping[str, str]:
        return self.by_key.get(sample.key) or self.by_model.get(sample.model_id) or {}


def _row_labels(row: Mapping[str, str]) -> dict[str, str]:
    labels = {task: normalise(task, row[task]) for task in TASKS if (row.get(task) or "").strip()}
    if "age_group" not in labels and (row.get("age") or "").strip():
        try:
            labels["age_group"] = age_group_of(float(row["age"]))
        except ValueError as exc:
            raise TrainingDataError(f"age {row['age']!r} is not a number") from exc
    return labels


def sample_label(sample: FaceSample, task: str, table: LabelTable) -> str | None:
    """The sample's class for ``task`` (CSV first, then json), or None when unlabelled."""
    joined = table.lookup(sample).get(task)
    if joined is not None:
        return joined
    value = (sample.meta.get("labels") or {}).get(task, sample.meta.get(task))
    return None if value in (None, "") else normalise(task, value)
