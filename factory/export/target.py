"""The export folder: refuse foreign content, replace a previous export, mark the new one.

A marker file (``.factory-export.json``) names the data URL and layout an
export came from. It is written first with ``complete: false`` and rewritten
at the end with ``complete: true`` and the list of files. A rerun of the same
data and layout deletes the listed files (all files, after an export that
did not finish: the folder held nothing else when it began) and writes them
again, so the folder ends with the same files; any other non-empty folder is
refused.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from factory.export.source import ExportError

MARKER = ".factory-export.json"


def _read_marker(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / MARKER).read_text())
    except (FileNotFoundError, ValueError):
        return None


def listed_files(root: Path) -> list[str]:
    """Files under ``root`` (relative, sorted), the marker left out."""
    found = []
    for folder, _, files in os.walk(root):
        found += [os.path.relpath(os.path.join(folder, f), root) for f in files]
    return sorted(f for f in found if f != MARKER)


def _remove_previous(root: Path, files: list[str]) -> None:
    for rel in files:
        (root / rel).unlink(missing_ok=True)
    # Folders the previous export made and left empty (deepest first).
    for folder, _, _ in sorted(os.walk(root), key=lambda w: -w[0].count(os.sep)):
        if Path(folder) != root and not os.listdir(folder):
            os.rmdir(folder)


def prepare_folder(out_dir: str, data_url: str, layout: str) -> Path:
    """The export root, emptied of a previous export of the same data and layout.

    Raises :class:`ExportError` for a remote URL or a non-empty folder that is
    not such an export.
    """
    if "://" in out_dir and not out_dir.startswith("file://"):
        raise ExportError(f"--out {out_dir}: exports are written to a local folder (their readers open files)")
    root = Path(out_dir.removeprefix("file://")).resolve()
    if root.exists() and not root.is_dir():
        raise ExportError(f"--out {root} is a file, not a folder")
    if root.exists() and any(root.iterdir()):
        marker = _read_marker(root)
        if marker is None or (marker.get("data"), marker.get("layout")) != (data_url, layout):
            what = "has no export marker" if marker is None else f"holds the {marker.get('layout')} export of {marker.get('data')}"
            raise ExportError(f"--out {root} is not empty and {what}; give an empty or new folder")
        _remove_previous(root, marker["files"] if marker.get("complete") else listed_files(root))
    root.mkdir(parents=True, exist_ok=True)
    _write_marker(root, {"data": data_url, "layout": layout, "complete": False})
    return root


def _write_marker(root: Path, marker: dict[str, Any]) -> None:
    (root / MARKER).write_text(json.dumps(marker, indent=1, sort_keys=True))


def write_file(root: Path, rel: str, data: bytes | str) -> None:
    """Write one export file (folders made as needed); a name that leaves ``root`` is refused.

    Names are built from sample keys and labels of a dataset that may come
    from someone else, so a ``..`` or an absolute part never picks the path.
    """
    parts = rel.split("/")
    if any(p in ("", ".", "..") or "\\" in p for p in parts) or Path(rel).is_absolute():
        raise ExportError(f"export file name {rel!r} would leave {root}; the dataset holds an unsafe key or label")
    path = root.joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)


def write_csv(root: Path, rel: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write one CSV file: a header row, then the rows (``\n`` line ends)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    write_file(root, rel, text.getvalue())


def finish_folder(root: Path, data_url: str, layout: str, summary: dict[str, Any], kept: Iterable[str] = ()) -> list[str]:
    """Mark the export complete (data, layout, summary, file list); returns the files.

    ``kept``: files that were there before the export wrote (a consumer's
    caches), left out of the list.
    """
    files = sorted(set(listed_files(root)) - set(kept))
    _write_marker(root, {"data": data_url, "layout": layout, "complete": True, "summary": summary, "files": files})
    return files
