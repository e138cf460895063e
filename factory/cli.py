"""`factory <command>`: the command line of the dataset factory.

Each subcommand is one entry of ``COMMANDS``: its help line, the function
that adds its arguments and its handler, named ``module:function`` so only
the chosen command's module is imported (the pipelines pull in Ray, torch,
MediaPipe and bpy; ``factory --help`` answers at once). Any user-facing
failure ends as one line on stderr and a non-zero exit, never a traceback wall.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Callable, NamedTuple

from factory.storage import StorageError

EXIT_ERROR = 1

Handler = Callable[[argparse.Namespace], int]


# -- commands handled here --------------------------------------------------------
def _inspect(args: argparse.Namespace) -> int:
    from factory.storage import open_location
    from factory.summary import summarize

    summary = summarize(open_location(args.url))
    print(summary.to_json() if args.json else summary.to_text())
    return 0


def _report(args: argparse.Namespace) -> int:
    import os

    from factory.report import write_report
    from factory.storage import open_location

    out = open_location(args.data)
    folder = args.out or (os.path.join(out.root, "report") if out.is_local else "report")
    print(write_report(out, folder))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from factory.pipelines.demo import run_demo

    return run_demo(args.out, workers=args.workers)


# -- argument sets ----------------------------------------------------------------
def _add_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="demo-out", help="output folder or URL (default: demo-out)")
    p.add_argument("--workers", default="1:2", help="actor pool size MIN:MAX (default 1:2)")


def _add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="dataset URL")
    p.add_argument("--out", help="folder for index.html and figures (default: DATA/report)")


def _add_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", help="dataset URL")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


class Command(NamedTuple):
    """One subcommand: help line, argument adder and handler (callables or ``module:function``)."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None] | str
    handler: Handler | str


def _resolve(target: Callable | str) -> Callable:
    if callable(target):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


COMMANDS: dict[str, Command] = {
    "demo": Command("run the built pipelines on inputs the factory makes, then inspect and report", _add_demo, _demo),
    "download": Command(
        "download videos (yt-dlp) into raw-video shards that `factory video --input` reads",
        "factory.pipelines.download:add_download_arguments",
        "factory.pipelines.download:run_download_from_args",
    ),
    "video": Command(
        "mine face tracks and voice clips from videos (methods A, C, D)",
        "factory.pipelines.video:add_video_arguments",
        "factory.pipelines.video:run_video_from_args",
    ),
    "annotate": Command(
        "map PMX morphs onto the 23 target morphs and inspect them by rendering",
        "factory.pipelines.render:add_annotate_arguments",
        "factory.pipelines.render:run_annotate_from_args",
    ),
    "render": Command(
        "render PMX models to posed face images with Blender (method B)",
        "factory.pipelines.render:add_render_arguments",
        "factory.pipelines.render:run_render_from_args",
    ),
    "anime-faces": Command(
        "draw procedural 2D anime illustrations with exact face boxes: detector training data, no hand labels",
        "factory.synthetic.anime_faces:add_anime_faces_arguments",
        "factory.synthetic.anime_faces:run_anime_faces_from_args",
    ),
    "train": Command(
        "train the anime face detector or the age/gender classifier",
        "factory.train:add_train_arguments",
        "factory.train:run_train_from_args",
    ),
    "ensemble": Command(
        "publish stored detectors (e.g. several training seeds) as one model whose members vote on each box",
        "factory.train.ensemble:add_ensemble_arguments",
        "factory.train.ensemble:run_ensemble_from_args",
    ),
    "characters": Command(
        "group a video dataset's face tracks into characters: one sample per character (faces, voices, labels)",
        "factory.characters.run:add_characters_arguments",
        "factory.characters.run:run_characters_from_args",
    ),
    "export": Command(
        "write a dataset in another project's layout (imagefolder, yolo, animeceleb, gochiusa, korean-av)",
        "factory.export.run:add_export_arguments",
        "factory.export.run:run_export_from_args",
    ),
    "report": Command("draw the dataset report (HTML + PNG figures) from committed shards", _add_report, _report),
    "inspect": Command("summarise a dataset: shards, samples, bytes, kinds, splits, errors", _add_inspect, _inspect),
}


def _chosen_command(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word that is one)."""
    return next((word for word in argv if word in COMMANDS), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``argv``, only the chosen command's arguments are loaded.

    Without ``argv`` every command's arguments are added (tests and docs use that).
    """
    chosen = _chosen_command(argv) if argv is not None else None
    parser = argparse.ArgumentParser(
        prog="factory",
        description=(
            "Anime-character dataset factory. Without RAY_ADDRESS a command starts an embedded "
            "local Ray; with it, it joins that cluster (as under 'ray job submit')."
        ),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=command.help, description=command.help)
        if argv is None or name == chosen:
            _resolve(command.add_arguments)(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``factory`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    from factory.provenance import record_command  # light: no pipeline imported

    record_command(argv)  # dataset.json records the command that made it
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return _resolve(COMMANDS[args.command].handler)(args)
    except (StorageError, ValueError, FileNotFoundError) as exc:
        print(f"factory {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("factory: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
