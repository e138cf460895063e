"""Arguments and handler of `factory train classifier|detector` (wired into factory/cli.py).

Each trainer is a registry entry: how its frozen config is built from the
parsed arguments, and the function that trains and publishes it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `factory train` (those of factory/cli.py's `_add_train`, plus training knobs)."""
    p.add_argument("what", choices=sorted(TRAINERS))
    p.add_argument("--data", required=True, action="append",
                   help="dataset URL (committed shards); the detector takes several (repeat --data)")
    p.add_argument("--out", help="model store URL (same as --model-store)")
    p.add_argument("--model-store", help="model store URL (default: FACTORY_MODEL_STORE or ~/.cache/factory/models)")
    p.add_argument("--name", help="model name in the store (default: detector / classifier)")
    p.add_argument("--epochs", type=int, help="training epochs (default: detector 30, classifier 10)")
    p.add_argument("--batch", type=int, help="batch size")
    p.add_argument("--imgsz", type=int, help="image size: detector input (default 256), classifier face crop (128)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda, 0 ... (default: a GPU when visible)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    det = p.add_argument_group("detector")
    det.add_argument("--model", default="yolo11n.yaml", help="ultralytics model YAML (never a .pt name)")
    det.add_argument("--close-mosaic", type=int, help="final epochs without mosaic (default: a fifth of --epochs)")
    det.add_argument("--backgrounds", type=int, default=1, help="random-background composites per render")
    det.add_argument("--pseudo-labels", help="a `factory frames` dataset: frames a trusted detector labels join the train split")
    det.add_argument("--pseudo-detector", default="mediapipe", help="detector spec that labels those frames")
    det.add_argument("--real-art", help="folder of real art with boxes.json: scored after training into metrics.json "
                     "(evaluation only, never trained on)")
    det.add_argument("--pseudo-min-score", type=float, default=0.8, help="only frames with exactly one face this sure")
    cls = p.add_argument_group("classifier")
    cls.add_argument("--arch", default="b0", choices=["b0", "b3"], help="EfficientNet-B0 or -B3")
    cls.add_argument("--task", default="all", choices=["all", "gender", "age_group"], help="heads to train")
    cls.add_argument("--labels", help="CSV keyed by key or model_id with gender / age_group / age columns")
    cls.add_argument("--init-weights", help="local backbone checkpoint to start from (default: random init)")
    cls.add_argument("--trainer", default="auto", choices=["auto", "plain", "ray"], help="Ray Train on a GPU cluster (auto)")
    cls.add_argument("--ray-storage", help="Ray Train checkpoint storage (s3:// or shared folder; multi-node clusters)")


def _given(args: argparse.Namespace, **mapping: str) -> dict[str, Any]:
    """Config fields whose flag was given (None means: keep the config default)."""
    return {field: getattr(args, flag) for field, flag in mapping.items() if getattr(args, flag) is not None}


def _detector(args: argparse.Namespace, store: str | None) -> str:
    from factory.train.detector import DetectorConfig, train_detector
    from factory.train.pseudo import PseudoLabelSettings

    config = DetectorConfig(
        model_yaml=args.model,
        backgrounds_per_image=args.backgrounds,
        pseudo_labels=args.pseudo_labels,
        real_art=args.real_art,
        pseudo=PseudoLabelSettings(detector=args.pseudo_detector, min_score=args.pseudo_min_score),
        seed=args.seed,
        **_given(args, name="name", epochs="epochs", batch="batch", imgsz="imgsz", device="device", threads="threads",
                 close_mosaic="close_mosaic"),
    )
    return str(train_detector(args.data, store, config))


def _classifier(args: argparse.Namespace, store: str | None) -> str:
    from factory.train.classifier import ClassifierConfig, train_classifier
    from factory.train.labels import TASKS

    config = ClassifierConfig(
        arch=args.arch,
        tasks=tuple(TASKS) if args.task == "all" else (args.task,),
        labels_csv=args.labels,
        init_weights=args.init_weights,
        trainer=args.trainer,
        ray_storage=args.ray_storage,
        seed=args.seed,
        **_given(args, name="name", epochs="epochs", batch="batch", image_size="imgsz", device="device", threads="threads"),
    )
    if len(args.data) > 1:
        raise SystemExit("factory train classifier: give one --data")
    return str(train_classifier(args.data[0], store, config))


@dataclass(frozen=True)
class Trainer:
    help: str
    run: Callable[[argparse.Namespace, str | None], str]


TRAINERS: dict[str, Trainer] = {
    "detector": Trainer("YOLO anime face detector from render shards", _detector),
    "classifier": Trainer("EfficientNet gender / age-group classifier", _classifier),
}


def run_train_from_args(args: argparse.Namespace) -> int:
    """Handler of `factory train`: trains, publishes, prints the stored model and its metrics."""
    import json

    from factory.models import ModelStore

    store = args.model_store or args.out
    ref = TRAINERS[args.what].run(args, store)
    metrics = ModelStore(store).fetch(ref).metrics
    print(f"stored {ref} in {ModelStore(store).loc.url}")
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)}, indent=1))
    return 0
