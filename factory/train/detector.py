"""`factory train detector`: an anime face detector from render shards, no hand labels.

Render samples carry exact face boxes; optionally, sampled video frames
labelled by a trusted detector join the train split (factory/train/pseudo.py). Each RGBA render is composited on a
random background (so the detector cannot learn the alpha edge), written as a
YOLO dataset on local disk (``images/``, ``labels/`` in YOLO txt format,
``data.yaml``) split by model id, and an ultralytics model built from a model
YAML is trained (never a ``.pt`` name: that downloads). It is evaluated on the
held-out models (mAP@0.5, mAP@.5:.95, precision, recall, as the AniVid paper
reports them) and published to the model store with the dataset's shard commit.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from factory.models import ModelRef, ModelStore
from factory.train.data import FaceSample, data_provenance, identity_split, load_face_samples_from
from factory.train.images import composite, random_background
from actors.offline import import_ultralytics
from factory.train.pseudo import PseudoLabelSettings, pseudo_labelled_frames
from factory.train.real_art import RealArtImage, load_real_art, score_detector
from factory.train.progress import EpochProgress

log = logging.getLogger(__name__)

LABEL_MAP = {0: "face"}
WEIGHTS_FILE = "best.pt"
YOLO_SPLITS = {"train": "train", "test": "val"}  # our split -> ultralytics folder


@dataclass(frozen=True)
class DetectorConfig:
    """Training settings; ``confidence`` is the AniVid paper's 0.60 for inference."""

    name: str = "detector"
    model_yaml: str = "yolo11n.yaml"
    epochs: int = 30
    imgsz: int = 256
    batch: int = 16
    warmup_epochs: float = 1.0  # ultralytics' 3 is most of a short schedule
    close_mosaic: int | None = None  # last epochs without mosaic; None: a fifth (ultralytics' fixed 10 is all of a short run)
    workers: int = 0
    device: str | None = None  # None: cuda:0 when visible, else cpu
    test_fraction: float = 0.15  # held-out models when the data has no test split
    backgrounds_per_image: int = 1  # composites per render
    confidence: float = 0.60
    threads: int | None = None  # CPU threads for torch; 1 is far faster on a busy shared CPU
    seed: int = 0
    pseudo_labels: str | None = None  # a `factory frames` dataset: frames a trusted detector labels join train
    real_art: str | None = None  # a folder of real art + boxes.json, scored after training (never trained on)
    pseudo: PseudoLabelSettings = field(default_factory=PseudoLabelSettings)

    def __post_init__(self) -> None:
        if self.model_yaml.endswith(".pt"):
            raise ValueError(f"--model {self.model_yaml}: give a model YAML (e.g. yolo11n.yaml); .pt names download")
        if self.epochs < 1 or self.imgsz < 32 or self.batch < 1 or self.backgrounds_per_image < 1:
            raise ValueError("epochs, batch and backgrounds_per_image must be >= 1 and imgsz >= 32")
        if self.close_mosaic is not None and self.close_mosaic < 0:
            raise ValueError("close_mosaic must be >= 0")

    @property
    def mosaic_off_epochs(self) -> int:
        """How many final epochs train without mosaic."""
        return self.epochs // 5 if self.close_mosaic is None else min(self.close_mosaic, self.epochs)


# -- dataset ------------------------------------------------------------------------
def yolo_label(box: tuple[float, float, float, float], width: int, height: int) -> str:
    """One YOLO txt line: class cx cy w h, normalised to [0, 1]."""
    x0, y0, x1, y1 = box
    x0, x1 = np.clip([x0, x1], 0, width)
    y0, y1 = np.clip([y0, y1], 0, height)
    return f"0 {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} {(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}"


def _write_sample(sample: FaceSample, folder: Path, split: str, copies: int, seed: int) -> None:
    rgba = sample.rgba()
    h, w = rgba.shape[:2]
    label = "".join(yolo_label(box, w, h) + "\n" for box in sample.face_boxes)
    for copy in range(copies):
        rng = np.random.default_rng([seed, copy, *sample.key.encode()])
        image = composite(rgba, random_background(rng, h, w))
        stem = f"{sample.key}_{copy}"
        cv2.imwrite(str(folder / "images" / split / f"{stem}.jpg"), image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
        (folder / "labels" / split / f"{stem}.txt").write_text(label)


def build_yolo_dataset(splits: dict[str, list[FaceSample]], folder: Path, config: DetectorConfig) -> Path:
    """Write the composited YOLO dataset under ``folder``; returns its data.yaml."""
    for ours, theirs in YOLO_SPLITS.items():
        (folder / "images" / theirs).mkdir(parents=True, exist_ok=True)
        (folder / "labels" / theirs).mkdir(parents=True, exist_ok=True)
        copies = config.backgrounds_per_image if ours == "train" else 1
        for sample in splits[ours]:
            _write_sample(sample, folder, theirs, copies, config.seed)
    names = "\n".join(f"  {k}: {v}" for k, v in LABEL_MAP.items())
    data_yaml = folder / "data.yaml"
    data_yaml.write_text(f"path: {folder}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return data_yaml


# -- training -----------------------------------------------------------------------
def _device(config: DetectorConfig) -> str:
    import torch

    return config.device or ("0" if torch.cuda.is_available() else "cpu")


def _mean_loss(trainer: Any) -> float | None:
    """The trainer's summed mean loss of the epoch (box + cls + dfl), None before any step."""
    loss = getattr(trainer, "tloss", None)
    if isinstance(loss, dict):  # some ultralytics releases keep {name: value}
        loss = sum(float(v) for v in loss.values()) if loss else None
    return None if loss is None else float(loss.sum() if hasattr(loss, "sum") else loss)


def _torch_threads(threads: int) -> int:
    """Set torch's CPU threads when `threads` is given; return the count in force."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def _train(data_yaml: Path, work: Path, config: DetectorConfig) -> tuple[Path, int]:
    """Train; return the last weights and the torch CPU threads the last epoch ran with."""
    ultralytics = import_ultralytics()
    model = ultralytics.YOLO(config.model_yaml)
    seen = {"threads": 0}
    # The trainer's select_device resets torch to ultralytics' NUM_THREADS (cores - 1: one thread on
    # 2 cores), so the setting is applied at each epoch's start, once the trainer exists.
    model.add_callback("on_train_epoch_start", lambda trainer: seen.update(threads=_torch_threads(config.threads)))
    progress = EpochProgress("detector", config.epochs)  # verbose=False silences ultralytics' own lines
    model.add_callback("on_train_epoch_end", lambda trainer: progress(trainer.epoch, _mean_loss(trainer)))
    model.train(
        data=str(data_yaml),
        epochs=config.epochs,
        imgsz=config.imgsz,
        batch=config.batch,
        workers=config.workers,
        device=_device(config),
        seed=config.seed,
        warmup_epochs=config.warmup_epochs,
        close_mosaic=config.mosaic_off_epochs,
        project=str(work),
        name="train",
        exist_ok=True,
        plots=False,  # plotting downloads a font
        amp=False,  # the AMP check downloads a .pt
        val=False,  # evaluated once at the end, on the held-out models
        verbose=False,
    )
    return work / "train" / "weights" / "last.pt", seen["threads"]


def evaluate_detector(weights: Path, data_yaml: Path, work: Path, config: DetectorConfig) -> dict[str, float]:
    """mAP@0.5, mAP@.5:.95, precision and recall on the data.yaml's val split."""
    ultralytics = import_ultralytics()
    result = ultralytics.YOLO(str(weights)).val(
        data=str(data_yaml),
        split="val",
        imgsz=config.imgsz,
        batch=config.batch,
        workers=config.workers,
        device=_device(config),
        project=str(work),
        name="val",
        exist_ok=True,
        plots=False,
        verbose=False,
    )
    box = result.box
    return {"map50": float(box.map50), "map50_95": float(box.map), "precision": float(box.mp), "recall": float(box.mr)}


def real_art_metrics(spec: str, images: list[RealArtImage], folder: str, confidence: float,
                     device: str | None = None) -> dict[str, Any]:
    """Recall at IoU 0.5 and extra boxes per image of detector ``spec`` on real-art images at ``confidence``."""
    from actors.detection import DetectorSettings, make_detector

    detector = make_detector(spec, DetectorSettings(min_score=confidence, device=device))
    result = score_detector(detector, images).to_json()
    return {**result, "folder": Path(folder).name, "confidence": confidence}


def train_detector(data_url: str | list[str], store_url: str | None, config: DetectorConfig = DetectorConfig()) -> ModelRef:
    """Train on one or more render-kind datasets, evaluate on held-out models and publish; returns the stored model's ref."""
    data_urls = [data_url] if isinstance(data_url, str) else list(data_url)
    samples = load_face_samples_from(data_urls, ("render",), faceless=True)  # background images too
    # Read before training: a bad folder is one error now, not after the whole run.
    real_art = load_real_art(config.real_art) if config.real_art else None
    splits = identity_split(samples, config.test_fraction, config.seed)
    pseudo: dict[str, Any] = {}
    if config.pseudo_labels:  # real video frames, train side only; evaluation stays on exact render boxes
        extra, pseudo = pseudo_labelled_frames(config.pseudo_labels, config.pseudo)
        splits["train"] = splits["train"] + extra
    store = ModelStore(store_url)
    with tempfile.TemporaryDirectory(prefix="factory-detector-") as tmp:
        work = Path(tmp)
        data_yaml = build_yolo_dataset(splits, work / "dataset", config)
        log.info("detector: %d train / %d test images", len(splits["train"]), len(splits["test"]))
        weights, threads = _train(data_yaml, work / "runs", config)
        metrics: dict[str, Any] = evaluate_detector(weights, data_yaml, work / "runs", config)
        metrics["train_threads"] = threads
        metrics.update(_counts(splits), **pseudo)
        if real_art is not None:
            metrics["real_art"] = real_art_metrics(f"yolo:{weights}", real_art, config.real_art, config.confidence, config.device)
        log.info("detector metrics: %s", json.dumps(metrics))
        manifest = {
            "kind": "detector",
            "framework": f"ultralytics-{import_ultralytics().__version__}",
            "config": asdict(config),
            "label_map": LABEL_MAP,
            "weights": WEIGHTS_FILE,
            "data": data_provenance(data_urls[0]),
            **({"extra_data": [data_provenance(u) for u in data_urls[1:]]} if len(data_urls) > 1 else {}),
        }
        if config.pseudo_labels:
            manifest["pseudo_label_data"] = data_provenance(config.pseudo_labels)
        files = {
            WEIGHTS_FILE: weights,
            "config.json": json.dumps(asdict(config), indent=1).encode(),
            "labels.json": json.dumps(LABEL_MAP).encode(),
        }
        return store.publish(config.name, files, metrics, manifest)


def _counts(splits: dict[str, list[FaceSample]]) -> dict[str, Any]:
    return {
        f"{side}_{what}": n
        for side, items in splits.items()
        for what, n in (("images", len(items)), ("models", len({s.model_id for s in items})))
    }
