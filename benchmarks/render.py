"""Render throughput of the pipeline vs a bare bpy loop, measured in the same run.

    python benchmarks/render.py [--models 4] [--images 10] [--engine cycles] [--samples 64] [--adaptive-threshold 0.01]
                                [--rss-models 20] [--json out.json]
    python benchmarks/render.py --styles [--style-images 8] [--samples 64] [--adaptive-threshold 0.01]

- bare loop: each synthetic model imported into Blender in this process,
  then the very images the pipeline renders (same samples: pose, morphs,
  light, style) in a plain Python loop; render time only, the ceiling the
  pipeline is held to (the pipeline's time includes imports and actors);
- import: seconds to import one model, and that cost spread over N images;
- pipeline: ``run_render`` on a local Ray over `--models` models (1 actor,
  then 2 actors), wall time from the first input to the last commit, Ray
  already started (its start-up is not the pipeline's cost);
- memory: one Blender child process rendering `--rss-models` models without
  recycling; its peak RSS after the first and after the last model.

- styles (``--styles``): per shader style, on Gene (../shared/realdata) and
  on a synthetic character, images per CPU-second (= images/s per core:
  the process's CPU time counts every render thread, so a machine loaded by
  others skews it less than wall time) of ``ModelScene`` pose + render +
  face_bbox, against a bare ``bpy.ops.render.render`` loop on the same
  scene in the same run.

Prints a markdown table (images/s and ratios) and writes JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from factory.render.jobs import RenderSettings


def _models(folder: Path, n: int, seed: int = 0) -> list[Path]:
    from factory.synthetic.character import random_character, write_character

    rng = np.random.default_rng(seed)
    return [write_character(random_character(rng), folder / f"m{i:02d}") for i in range(n)]


def bare_loop(models: Path, images: int, settings) -> dict:
    """Per model: import once, then render the pipeline's own samples in a plain loop."""
    from factory.pipelines.render import find_models, model_id
    from factory.render.morphs import YAW, available_targets, map_morphs
    from factory.render.sampling import SamplingConfig, sample_poses
    from factory.render.scene import ModelScene

    import_s = render_s = 0.0
    n = 0
    warm = ModelScene.from_file(find_models(str(models))[0][0], settings)
    warm.render()  # untimed: the first render of a process loads Cycles' kernels
    warm.close()
    for path, rel in find_models(str(models)):
        start = time.perf_counter()
        scene = ModelScene.from_file(path, settings)
        import_s += time.perf_counter() - start
        targets = available_targets(map_morphs(scene.model.morphs))
        start = time.perf_counter()
        for sample in sample_poses(model_id(rel), targets, SamplingConfig(images_per_model=images)):
            morphs = {targets[t]: w for t, w in sample.morphs.items()}
            scene.pose(morphs, *sample.pose[YAW:], sample.light_intensity, sample.style)
            scene.render()
            scene.face_bbox()
            n += 1
        render_s += time.perf_counter() - start
        scene.close()
    models_n = len(find_models(str(models)))
    return {"import_s": import_s / models_n, "render_s": render_s, "images": n, "images_per_s": n / render_s}


def pipeline(models: Path, out: str, images: int, settings, workers: int) -> dict:
    from actors.blender import RendererConfig
    from factory.pipelines.render import RenderRunConfig, run_render
    from factory.render.sampling import SamplingConfig

    config = RenderRunConfig(RendererConfig(SamplingConfig(images_per_model=images), settings),
                             workers=(workers, workers))
    start = time.perf_counter()
    result = run_render(str(models), out, config, resume=False)
    wall = time.perf_counter() - start
    n = result.dataset["counts"]["samples"]
    return {"workers": workers, "images": n, "wall_s": wall, "images_per_s": n / wall}


def memory(models: list[Path], settings) -> dict:
    """Peak RSS of one Blender child across many models (no recycling)."""
    from actors.blender import RENDER_MODEL, BlenderProcess, WorkerSettings
    from factory.render.jobs import RenderJob
    from factory.render.sampling import SamplingConfig

    process = BlenderProcess(WorkerSettings(recycle_every=len(models) + 1))
    peaks = []
    try:
        for i, path in enumerate(models):
            process.call(RENDER_MODEL, RenderJob(str(path), f"rss{i}", SamplingConfig(images_per_model=2), settings))
            peaks.append(process.peak_rss_bytes())
    finally:
        process.stop()
    return {"models": len(models), "peak_rss_first_mb": peaks[0] / 2**20, "peak_rss_last_mb": peaks[-1] / 2**20,
            "growth_pct": 100 * (peaks[-1] / peaks[0] - 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--images", type=int, default=10, help="images per model")
    parser.add_argument("--engine", default="cycles", choices=["cycles", "eevee", "workbench"])
    parser.add_argument("--samples", type=int, default=RenderSettings.samples)
    parser.add_argument("--min-samples", type=int, default=RenderSettings.min_samples)
    parser.add_argument("--adaptive-threshold", type=float, default=RenderSettings.adaptive_threshold,
                        help="0: every pixel takes --samples")
    parser.add_argument("--rss-models", type=int, default=20)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--styles", action="store_true", help="only the per-style images/s per core table")
    parser.add_argument("--style-images", type=int, default=8, help="images per style and model (--styles)")
    args = parser.parse_args(argv)

    from factory.pipelines.runtime import init_ray

    settings = RenderSettings(engine=args.engine, samples=args.samples, min_samples=args.min_samples,
                              adaptive_threshold=args.adaptive_threshold)
    if args.styles:
        figures = styles_table(settings, args.style_images)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=1))
        return figures

    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        folder = Path(tmp)
        _models(folder / "models", args.models)
        bare = bare_loop(folder / "models", args.images, settings)
        init_ray()
        one = pipeline(folder / "models", str(folder / "out1"), args.images, settings, 1)
        two = pipeline(folder / "models", str(folder / "out2"), args.images, settings, 2)
        rss_paths = _models(folder / "rss", args.rss_models, seed=1)
        mem = memory(rss_paths, RenderSettings(engine="workbench", samples=8))
    figures = {
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}",
        "engine": args.engine, **settings.metadata(), "bare": bare, "pipeline_1": one, "pipeline_2": two,
        "memory": mem,
        "ratio_pipeline_vs_bare": one["images_per_s"] / bare["images_per_s"],
        "ratio_2_vs_1_actors": two["images_per_s"] / one["images_per_s"],
        "import_amortised_s": {n: bare["import_s"] / n for n in (20, 100)},
    }
    _print(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return figures


GENE = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "mmd" / "gene" / "Gene_light.pmx"


def _per_core(run, n: int) -> tuple[float, float]:
    """(images per CPU-second, images per wall-second) of n calls of run()."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        run(i)
    return n / (time.process_time() - cpu), n / (time.perf_counter() - wall)


def face_rmse(scene, reference: int = 128) -> float:
    """Face-box RMSE (of 255, RGBA) of a render with the scene's settings against a fixed
    `reference`-sample one, yaw 12, pitch 5."""
    import io

    from PIL import Image

    def rgba(png: bytes) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).astype(np.float64)

    scene.pose({}, yaw=12.0, pitch=5.0, style=scene.style)
    x0, y0, x1, y1 = (max(round(v), 0) for v in scene.face_bbox())
    ref, img = rgba(scene.render_fixed(reference)), rgba(scene.render())
    return float(np.sqrt(np.mean((img[y0:y1, x0:x1] - ref[y0:y1, x0:x1]) ** 2)))


def styles_table(settings, images: int) -> dict:
    """Per style and model: ModelScene images/s per core vs a bare render loop on the same scene."""
    import bpy

    from factory.render.scene import ModelScene
    from factory.render.styles import STYLE_REGISTRY
    from factory.synthetic.character import build_character, write_character

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-styles-") as tmp:
        models = {"synthetic": write_character(build_character(), tmp)}
        if GENE.is_file():
            models["gene"] = GENE
        for label, path in models.items():
            scene = ModelScene.from_file(path, settings)
            for name in STYLE_REGISTRY:
                scene.pose({}, style=name)
                scene.render()  # untimed: the first render of a style builds its shaders

                def posed(i: int, scene=scene, name=name) -> None:
                    scene.pose({}, yaw=(i % 5 - 2) * 8.0, pitch=(i % 3 - 1) * 6.0, light_intensity=0.3 + 0.075 * i,
                               style=name)
                    scene.render()
                    scene.face_bbox()

                pipe_cpu, pipe_wall = _per_core(posed, images)
                bare_cpu, bare_wall = _per_core(lambda i: bpy.ops.render.render(write_still=True), images)
                rows.append({"model": label, "style": name, "images_per_core_s": pipe_cpu, "images_per_s": pipe_wall,
                             "bare_per_core_s": bare_cpu, "bare_per_s": bare_wall, "ratio": pipe_cpu / bare_cpu,
                             "face_rmse": face_rmse(scene)})
            scene.close()
    print(f"\n{platform.machine()} {os.cpu_count()} CPUs; {settings.engine} at {settings.samples} samples, "
          f"{settings.resolution}x{settings.resolution}, {images} images a row\n")
    print("| model | style | images/s per core | bare loop, per core | ratio | images/s (wall) | face RMSE vs 128 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['style']} | {r['images_per_core_s']:.2f} | {r['bare_per_core_s']:.2f} | "
              f"{r['ratio']:.2f} | {r['images_per_s']:.2f} | {r['face_rmse']:.2f} |")
    return {"machine": f"{platform.machine()} {os.cpu_count()} CPUs", "engine": settings.engine,
            "samples": settings.samples, "rows": rows}


def _print(f: dict) -> None:
    b, one, two, mem = f["bare"], f["pipeline_1"], f["pipeline_2"], f["memory"]
    print(f"\n{f['machine']}; {f['engine']} at {f['samples']} samples, 256x256\n")
    print("| measure | value | ratio |\n|---|---|---|")
    print(f"| bare bpy loop (same scenes and samples, {b['images']} images) | {b['images_per_s']:.2f} img/s | 1.00 |")
    print(f"| pipeline, 1 actor ({one['images']} images) | {one['images_per_s']:.2f} img/s "
          f"| {f['ratio_pipeline_vs_bare']:.2f} vs bare |")
    print(f"| pipeline, 2 actors ({two['images']} images) | {two['images_per_s']:.2f} img/s "
          f"| {f['ratio_2_vs_1_actors']:.2f} vs 1 actor |")
    amortised = f["import_amortised_s"]
    print(f"| model import (mean) | {b['import_s']:.3f} s | {amortised[20]:.4f} s/img at 20, {amortised[100]:.4f} at 100 |")
    print(f"| worker peak RSS over {mem['models']} models | {mem['peak_rss_first_mb']:.0f} -> "
          f"{mem['peak_rss_last_mb']:.0f} MiB | {mem['growth_pct']:+.1f} % |")


if __name__ == "__main__":
    main()
