"""One input's rows: the unit of work a stage maps, and its failure capture.

Every pipeline stage (a Ray actor or a plain function) wraps its work on one
input in :func:`rows_for_input`, so a bad input becomes one error row and an
input that yields nothing one ``empty`` row; the rest of the run goes on.
This sits below the actors and the pipelines that both call it.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from factory.shards import make_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputItem:
    """One unit of work (a video, a model) with a stable id."""

    input_id: str
    uri: str
    split: str = "all"
    meta: dict[str, Any] = field(default_factory=dict)


def rows_for_input(item: dict, produce: Callable[[], Iterable[dict]]) -> list[dict]:
    """Run one input's stage and tag its rows; any exception becomes one error row.

    ``item`` is an :class:`InputItem` as a dict (how Ray Data carries it).
    An input that yields nothing gets one ``empty`` row, so a resumed run
    knows it is done.
    """
    input_id, split = item["input_id"], item.get("split") or "all"
    try:
        rows = list(produce())
    except Exception as exc:  # per-input failures are data, not crashes
        log.warning("input %s failed: %s", input_id, exc)
        log.debug("%s", traceback.format_exc())
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        rows = [{"__key__": make_key(input_id, "error"), "__error__": message}]
    if not rows:
        rows = [{"__key__": make_key(input_id, "empty"), "__status__": "empty"}]
    for row in rows:
        row["__input__"] = input_id
        row["__input_rows__"] = len(rows)
        row.setdefault("__split__", split)
    return rows
