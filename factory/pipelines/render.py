"""`factory render` and `factory annotate`: PMX models -> posed face images (method B).

render: every model file under --models is one input (id from its relative
path, split train/test by that id); so is every model inside a .zip there
(listed from the zip's directory, extracted per task into a temp folder by
factory/sources/archives.py; id from the archive's relative path and the
inner path; a bad archive is one error row). A Blender actor pool (actors/blender.py)
imports each model once and renders its sampled images; each image is one
``render`` sample (``png`` + ``json``, DESIGN.md). Keys are
``{model_id}_{image:04d}``, so a resumed run rewrites the same names.

annotate: per model, the name-based morph map (factory/render/morphs.py)
plus render-diff inspection of every mapped morph, written as one parquet
table (``annotations.parquet``). A user may edit its ``target`` and ``use``
columns and pass it back with ``factory render --annotations``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from actors.blender import INSPECT_MODEL, BlenderProcess, BlenderRenderer, RendererConfig, WorkerSettings, local_model
from factory.pipelines.runner import RunResult, actor_pool_stage, run
from factory.rows import InputItem
from factory.pipelines.runtime import parse_pool
from factory.render.jobs import InspectionSettings, InspectJob, ModelInspection, RenderSettings
from factory.render.sampling import PAPER_TEST_RATIO, SamplingConfig, split_of
from factory.shards import ShardLimits, make_key
from factory.sources.archives import ArchiveError, archive_models
from factory.sources.archives import model_id as archive_model_id
from factory.storage import open_location

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".pmx", ".pmd")
ARCHIVE_SUFFIX = ".zip"
ANNOTATIONS_FILE = "annotations.parquet"


@dataclass(frozen=True)
class RenderRunConfig:
    """Settings of a render run."""

    renderer: RendererConfig = field(default_factory=RendererConfig)
    workers: tuple[int, int] = (1, 2)
    limits: ShardLimits = field(default_factory=lambda: ShardLimits(max_samples=200))


# -- inputs --------------------------------------------------------------------------
def find_models(models_url: str, suffixes: tuple[str, ...] = MODEL_SUFFIXES) -> list[tuple[str, str]]:
    """(uri, path relative to the folder) of every file with one of ``suffixes`` under it, sorted; a file URL is itself."""
    loc = open_location(models_url)
    if loc.fs.isfile(loc.root):
        files = [loc.root]
        base = loc.root.rsplit("/", 1)[0]
    else:
        files = [p for p in loc.fs.find(loc.root) if p.lower().endswith(suffixes)]
        base = loc.root.rstrip("/")
    found = []
    for path in sorted(files):
        rel = path[len(base):].lstrip("/")
        found.append((path if loc.is_local else f"{loc.scheme}://{path}", rel))
    return found


def model_id(relative_path: str) -> str:
    """A stable, dot-free id: the file stem plus a short hash of the relative path."""
    stem = Path(relative_path).stem[:40]
    return make_key(stem, hashlib.blake2b(relative_path.encode("utf-8"), digest_size=4).hexdigest())


def model_inputs(models_url: str, sampling: SamplingConfig,
                 annotations: dict[str, dict[str, int]] | None = None) -> list[InputItem]:
    """One input per model file, with its split and any annotation override."""
    items = []
    for uri, rel in find_models(models_url, MODEL_SUFFIXES + (ARCHIVE_SUFFIX,)):
        for mid, model_file, archive, member in _models_in(uri, rel):
            override = (annotations or {}).get(mid)
            # Every item carries every key as text: Ray Data widens per-row dicts to one schema.
            meta = {"model_file": model_file, "targets_json": json.dumps(override) if override is not None else "",
                    "archive": archive, "archive_member": member}
            items.append(InputItem(mid, uri, split_of(mid, sampling), meta))
    return items


def _models_in(uri: str, rel: str) -> list[tuple[str, str, str, str]]:
    """(model id, model file, archive, member) of one file found: itself, or each model in a zip.

    An archive that cannot be listed or holds no model is still one input:
    its task raises the archive's error, which becomes its error row.
    """
    if not rel.lower().endswith(ARCHIVE_SUFFIX):
        return [(model_id(rel), rel, "", "")]
    try:
        members = archive_models(uri)
    except ArchiveError:
        members = []
    found = [(archive_model_id(rel, m), f"{rel}/{m}", rel, m) for m in members]
    return found or [(archive_model_id(rel, ""), rel, rel, "")]


# -- render ---------------------------------------------------------------------------
def run_render(models_url: str, out_url: str, config: RenderRunConfig = RenderRunConfig(),
               annotations: str | None = None, resume: bool = True, takeover: bool = False) -> RunResult:
    """Render every model under ``models_url`` into committed shards under ``out_url``."""
    overrides = read_annotations(annotations) if annotations else None
    items = model_inputs(models_url, config.renderer.sampling, overrides)
    if not items:
        raise FileNotFoundError(f"no .pmx/.pmd model files under {models_url}")

    # "blender": nodes that advertise it host the renderers; asked for only where the cluster has it
    wants = {"blender": 1.0, "GPU": 1.0 if config.renderer.settings.gpu else 0.0}
    build = actor_pool_stage(BlenderRenderer, config.renderer, config.workers, wants)
    settings = {
        "sampling": asdict(config.renderer.sampling),
        "render": asdict(config.renderer.settings),
        "annotations": annotations or "",
    }
    return run("render", out_url, settings, items, build, limits=config.limits, resume=resume, takeover=takeover)


# -- annotate -------------------------------------------------------------------------
ANNOTATION_SCHEMA = pa.schema([
    ("model_id", pa.string()), ("model_file", pa.string()), ("model_name", pa.string()),
    ("morph_index", pa.int32()), ("morph_name", pa.string()), ("morph_name_en", pa.string()),
    ("panel", pa.int32()), ("kind", pa.string()), ("target", pa.string()), ("part", pa.string()),
    ("side", pa.string()), ("method", pa.string()), ("changed_pixels", pa.int64()),
    ("changed_face", pa.float64()), ("outside_share", pa.float64()), ("centroid_v", pa.float64()),
    ("flag", pa.string()), ("use", pa.bool_()), ("error", pa.string()),
])


def _annotation_rows(mid: str, rel: str, result: ModelInspection) -> list[dict]:
    rows = []
    for check in result.morphs:
        row = asdict(check)
        row = {("morph_" + k if k in ("index", "name", "name_en") else k): v for k, v in row.items()}
        row.update(model_id=mid, model_file=rel, model_name=result.model_name,
                   use=check.target is not None and check.flag == "ok", error=None)
        rows.append(row)
    return rows


def annotate_models(models_url: str, inspection: InspectionSettings = InspectionSettings(),
                    worker: WorkerSettings = WorkerSettings()) -> pa.Table:
    """The annotation table of every model under ``models_url`` (a failed model: one row with ``error``)."""
    process = BlenderProcess(worker)
    rows: list[dict] = []
    try:
        for uri, rel in find_models(models_url):
            mid = model_id(rel)
            try:
                with local_model(uri) as path:
                    rows += _annotation_rows(mid, rel, process.call(INSPECT_MODEL, InspectJob(path, mid, inspection)))
            except Exception as exc:  # per-model failures are data
                log.warning("annotate %s failed: %s", rel, exc)
                rows.append({"model_id": mid, "model_file": rel, "use": False, "error": str(exc).splitlines()[0]})
    finally:
        process.stop()
    return pa.Table.from_pylist(rows, schema=ANNOTATION_SCHEMA)


def run_annotate(models_url: str, out_url: str, inspection: InspectionSettings = InspectionSettings()) -> pa.Table:
    """Annotate and inspect every model; writes ``{out_url}/annotations.parquet`` and returns the table."""
    table = annotate_models(models_url, inspection)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    open_location(out_url).put_bytes(ANNOTATIONS_FILE, buf.getvalue())
    return table


def read_annotations(url: str) -> dict[str, dict[str, int]]:
    """model_id -> {target: morph index} from an annotation table (rows with ``use`` and a target).

    A model listed in the table gets exactly its used rows (possibly none);
    a model absent from it keeps the automatic name map.
    """
    loc = open_location(url)
    table = pq.read_table(io.BytesIO(loc.fs.cat_file(loc.root)))
    missing = {"model_id", "morph_index", "target", "use"} - set(table.column_names)
    if missing:
        raise ValueError(f"annotation table {url} lacks columns {sorted(missing)}")
    out: dict[str, dict[str, int]] = {}
    for row in table.select(["model_id", "morph_index", "target", "use", *(
            ["error"] if "error" in table.column_names else [])]).to_pylist():
        if row.get("error"):
            continue
        targets = out.setdefault(row["model_id"], {})
        if row["use"] and row["target"] and row["morph_index"] is not None:
            targets.setdefault(row["target"], int(row["morph_index"]))
    return out


# -- demo -----------------------------------------------------------------------------
def render_demo(out_url: str, folder: str, n_models: int = 2, images_per_model: int = 8,
                engine: str = "workbench", workers: tuple[int, int] = (1, 1), seed: int = 0) -> RunResult:
    """Write `n_models` synthetic characters under `folder` and render them quickly."""
    from factory.synthetic.character import random_character, write_character

    rng = np.random.default_rng(seed)
    for i in range(n_models):
        character = random_character(rng, name=f"demo{i}")
        target = Path(folder) / f"character{i:02d}"
        if not (target / "character.pmx").exists():
            write_character(character, target)
    config = RenderRunConfig(
        RendererConfig(SamplingConfig(images_per_model=images_per_model), RenderSettings(engine=engine, samples=8)),
        workers=workers,
    )
    return run_render(folder, out_url, config)


# -- command line ---------------------------------------------------------------------
def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `factory render` (names of the CLI contract plus tuning flags)."""
    parser.add_argument("--models", required=True,
                        help="folder or URL of PMX/PMD models and .zip archives of them (searched recursively), or one .zip")
    parser.add_argument("--out", required=True, help="output folder or URL")
    parser.add_argument("--images-per-model", type=int, help="override the paper's 100 / 20 images per model")
    parser.add_argument("--render-workers", default="1:2", help="Blender actor pool MIN:MAX")
    parser.add_argument("--engine", default="cycles", choices=["cycles", "eevee", "workbench"])
    parser.add_argument("--samples", type=int, default=RenderSettings.samples,
                        help=f"render samples per pixel, Cycles' most (default {RenderSettings.samples})")
    parser.add_argument("--min-samples", type=int, default=RenderSettings.min_samples,
                        help=f"Cycles: samples every pixel takes (default {RenderSettings.min_samples})")
    parser.add_argument("--adaptive-threshold", type=float, default=RenderSettings.adaptive_threshold,
                        help="Cycles: a pixel stops once its noise is under this (default "
                             f"{RenderSettings.adaptive_threshold}; 0: every pixel takes --samples)")
    parser.add_argument("--gpu", action="store_true", help="render on the GPU (CUDA/OptiX)")
    parser.add_argument("--render-threads", type=int, default=0,
                        help="CPU threads per Blender renderer (default 0: all cores)")
    parser.add_argument("--annotations", help="edited annotation table from 'factory annotate'")
    parser.add_argument("--seed", type=int, default=0, help="run seed of the pose sampling")
    parser.add_argument("--test-ratio", type=float, default=PAPER_TEST_RATIO,
                        help="share of models in the test split (default: the paper's 294/3613)")
    parser.add_argument("--recycle-every", type=int, default=20, help="models per Blender process")
    parser.add_argument("--resume", action="store_true", help="continue a dataset already in --out")
    parser.add_argument(
        "--force-takeover", action="store_true",
        help="claim --out even while another run's lease is alive; that run's writers are fenced out",
    )


def run_render_from_args(args: argparse.Namespace) -> int:
    """Handler of `factory render`."""
    config = RenderRunConfig(
        RendererConfig(
            SamplingConfig(run_seed=args.seed, images_per_model=args.images_per_model, test_ratio=args.test_ratio),
            RenderSettings(engine=args.engine, samples=args.samples, min_samples=args.min_samples,
                           adaptive_threshold=args.adaptive_threshold, gpu=args.gpu, threads=args.render_threads),
            WorkerSettings(recycle_every=args.recycle_every),
        ),
        workers=parse_pool(args.render_workers),
    )
    result = run_render(args.models, args.out, config, args.annotations, resume=args.resume, takeover=args.force_takeover)
    counts = result.dataset["counts"]
    print(f"rendered {counts['samples']} images from {counts['inputs']} models "
          f"({counts['errors']} failed, {result.inputs_skipped} already complete) into {args.out}")
    return 0


def add_annotate_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `factory annotate`."""
    parser.add_argument("--models", required=True, help="folder or URL of PMX/PMD models")
    parser.add_argument("--out", required=True, help="output folder or URL for annotations.parquet")
    # inspection renders the way `factory render` will: pass the same engine / samples / --gpu
    default = InspectionSettings()
    parser.add_argument("--engine", default=default.settings.engine, choices=["cycles", "eevee", "workbench"],
                        help="engine of the inspection renders (default: the render default)")
    parser.add_argument("--samples", type=int, default=default.settings.samples, help="render samples per pixel")
    parser.add_argument("--gpu", action="store_true", help="render on the GPU (CUDA/OptiX)")
    parser.add_argument("--inspect-resolution", type=int, default=default.settings.resolution,
                        help=f"inspection image size in pixels (default {default.settings.resolution})")


def run_annotate_from_args(args: argparse.Namespace) -> int:
    """Handler of `factory annotate`."""
    settings = RenderSettings(engine=args.engine, samples=args.samples, gpu=args.gpu,
                              resolution=args.inspect_resolution)
    table = run_annotate(args.models, args.out, InspectionSettings(settings=settings))
    rows = table.to_pylist()
    flagged = sum(1 for r in rows if r["flag"] not in (None, "ok", "not_inspected"))
    failed = len({r["model_id"] for r in rows if r["error"]})
    print(f"annotated {len({r['model_id'] for r in rows})} models: {sum(bool(r['use']) for r in rows)} morphs "
          f"in use, {flagged} flagged, {failed} models failed -> {open_location(args.out).url_of(ANNOTATIONS_FILE)}")
    return 0
