"""Run one export: check the layout and data, prepare the folder, write, mark it done."""

from __future__ import annotations

import argparse
import importlib
import json
import os
from typing import Any

from factory.export import LAYOUTS
from factory.export.options import ExportOptions
from factory.export.source import ExportError, check_kinds
from factory.export.target import finish_folder, listed_files, prepare_folder
from factory.storage import open_location


def export(data_url: str, layout: str, out_dir: str, options: ExportOptions | None = None) -> dict[str, Any]:
    """Export the committed samples of ``data_url`` to ``out_dir`` in ``layout``; returns the summary.

    Raises :class:`ExportError` (one line) for an unknown layout, an empty
    dataset, one of the wrong kind, or an ``out_dir`` that is not empty and
    not a previous export of the same data and layout.
    """
    if layout not in LAYOUTS:
        raise ExportError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    module = importlib.import_module(LAYOUTS[layout])
    data = open_location(data_url)
    check_kinds(data, module.KINDS, layout)
    source = os.path.abspath(data.root) if data.is_local else data.url  # the same data from any cwd
    root = prepare_folder(out_dir, source, layout)
    kept = listed_files(root)  # a consumer's own files (label caches) beside a previous export
    summary = module.write(data, root, options or ExportOptions())
    files = finish_folder(root, source, layout, summary, kept)
    summary["files"] = len(files)
    return summary


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """The `factory export` flags."""
    d = ExportOptions()
    parser.add_argument("--data", required=True, help="dataset URL (path, file://, s3://)")
    parser.add_argument("--layout", required=True, help=f"one of: {', '.join(LAYOUTS)} (docs/EXPORT.md)")
    parser.add_argument("--out", required=True, help="local folder to write (new, empty, or a previous export of the same data and layout)")
    parser.add_argument("--class-by", help="imagefolder/gochiusa: json field or label naming the class "
                        "(character_id, model_id, gender, age_group, ...; default: the sample's identity)")
    parser.add_argument("--seed", type=int, default=d.seed, help="yolo: seed of the backgrounds and held-out models")
    parser.add_argument("--test-fraction", type=float, default=d.test_fraction,
                        help="yolo: share of models held out for val when the data has no test split")


def run_export_from_args(args: argparse.Namespace) -> int:
    """CLI handler: export, then print the summary as JSON."""
    options = ExportOptions(class_by=args.class_by, seed=args.seed, test_fraction=args.test_fraction)
    summary = export(args.data, args.layout, args.out, options)
    print(json.dumps({"layout": args.layout, "out": args.out, **summary}, sort_keys=True))
    return 0
