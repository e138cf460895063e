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
from pathlib import Path
from typing import Any, Callable, Iterable

from factory.shards import make_key

log = logging.getLogger(__name__)
_ROOT = Path(__file__).resolve().parents[1]
_PACKAGES = ("factory", "actors")


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
        # The index keeps an error row's json: errors.parquet reads its class and stage from it.
        info = {"kind": "error", "error_class": type(exc).__name__, "stage": failed_stage(exc), "message": message}
        rows = [{"__key__": make_key(input_id, "error"), "__error__": message, "json": info}]
    if not rows:
        info = {"kind": "empty", "reason": "the stage gave no sample"}
        rows = [{"__key__": make_key(input_id, "empty"), "__status__": "empty", "json": info}]
    for row in rows:
        row["__input__"] = input_id
        row["__input_rows__"] = len(rows)
        row.setdefault("__split__", split)
    return rows


def failed_stage(exc: BaseException) -> str:
    """The project module where ``exc`` was raised (``factory.video.decode``): modules are named after stages.

    The innermost traceback frame inside ``factory/`` or ``actors/``, this
    module excluded; ``unknown`` when none is.
    """
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        path = Path(frame.filename).resolve()
        if path == Path(__file__).resolve() or not path.is_relative_to(_ROOT):
            continue
        parts = path.relative_to(_ROOT).with_suffix("").parts
        if parts and parts[0] in _PACKAGES:
            return ".".join(p for p in parts if p != "__init__")
    return "unknown"
