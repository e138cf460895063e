"""`factory train classifier`: the paper's EfficientNet-B0/B3 age/gender validation.

Faces come from committed shards (render samples cropped at ``face_bbox``,
video face tracks as they are), labels from their json or a user CSV
(:mod:`factory.train.labels`). The split is by identity (model id, or video
+ track), the loss is class-weighted per task (the paper's data was 62 %
child), and the held-out identities give accuracy, per-class recall and a
confusion matrix PNG per task, stored beside the checkpoint.

Training runs as a plain torch loop on this machine's device, or under Ray
Train's ``TorchTrainer`` (one worker per GPU, DDP) when the process is joined
to a Ray cluster that has GPUs (``trainer="auto"``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from factory.models import ModelRef, ModelStore
from actors.classification import (
    CHECKPOINT_FILE,
    MultiTaskNet,
    Preprocess,
    load_init_weights,
    save_checkpoint,
)
from factory.train.data import FaceSample, TrainingDataError, data_provenance, identity_split, load_face_samples
from factory.train.progress import EpochProgress
from factory.train.images import composite, random_background
from factory.train.labels import TASKS, LabelTable, sample_label
from factory.train.metrics import confusion, plot_confusion, summarize

log = logging.getLogger(__name__)
UNLABELLED = -1


@dataclass(frozen=True)
class ClassifierConfig:
    """Training settings (``tasks``: one head each on a shared backbone)."""

    name: str = "classifier"
    arch: str = "b0"  # b0 | b3
    tasks: tuple[str, ...] = ("gender", "age_group")
    epochs: int = 10
    batch: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    image_size: int = 128
    margin: float = 1.3
    test_fraction: float = 0.2  # held-out identities when the data has no test split
    kinds: tuple[str, ...] = ("render", "video_face")
    labels_csv: str | None = None
    init_weights: str | None = None
    trainer: str = "auto"  # auto | plain | ray
    ray_storage: str | None = None  # Ray Train checkpoints: shared storage (s3://, NFS) on a multi-node cluster; a temp folder by default
    device: str | None = None  # plain loop: None picks cuda when visible
    threads: int | None = None  # CPU threads for torch; 1 is far faster on a busy shared CPU
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.tasks) - set(TASKS)
        if not self.tasks or unknown:
            raise ValueError(f"--task must name some of {', '.join(TASKS)}")
        if self.trainer not in ("auto", "plain", "ray"):
            raise ValueError("trainer must be auto, plain or ray")
        if self.epochs < 1 or self.batch < 1 or self.image_size < 32:
            raise ValueError("epochs and batch must be >= 1, image_size >= 32")

    @property
    def task_classes(self) -> dict[str, tuple[str, ...]]:
        return {t: TASKS[t] for t in self.tasks}

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess(self.image_size, self.margin)


# -- data ---------------------------------------------------------------------------
def encode_targets(samples: Sequence[FaceSample], config: ClassifierConfig, table: LabelTable) -> np.ndarray:
    """(n, tasks) class indices; UNLABELLED where a sample has no label for a task."""
    out = np.full((len(samples), len(config.tasks)), UNLABELLED, np.int64)
    for i, sample in enumerate(samples):
        for j, task in enumerate(config.tasks):
            label = sample_label(sample, task, table)
            if label is not None:
                out[i, j] = TASKS[task].index(label)
    return out


def class_weights(targets: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (n / (k * count)); 0 for a class with no sample."""
    labelled = targets[targets != UNLABELLED]
    counts = np.bincount(labelled, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, len(labelled) / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def face_tensor(sample: FaceSample, prep: Preprocess, rng: np.random.Generator, augment: bool) -> np.ndarray:
    """One sample composited on a random background, cropped and normalised.

    Training (``augment``) also jitters the box and flips; evaluation uses a
    background seeded by the sample key, so it is the same on every run.
    """
    rgba = sample.rgba()
    rgb = composite(rgba, random_background(rng, *rgba.shape[:2]))
    x0, y0, x1, y1 = sample.face_bbox
    if augment:
        w, h = x1 - x0, y1 - y0
        dx, dy, ds = rng.uniform(-0.06, 0.06, 3)
        x0, x1 = x0 + dx * w - ds * w, x1 + dx * w + ds * w
        y0, y1 = y0 + dy * h - ds * h, y1 + dy * h + ds * h
        if rng.random() < 0.5:
            rgb, (x0, x1) = rgb[:, ::-1], (rgb.shape[1] - x1, rgb.shape[1] - x0)
    return prep(np.ascontiguousarray(rgb), (x0, y0, x1, y1))


def make_batch(samples: Sequence[FaceSample], prep: Preprocess, rng: np.random.Generator, augment: bool) -> torch.Tensor:
    return torch.from_numpy(np.stack([face_tensor(s, prep, rng, augment) for s in samples]))


# -- training -----------------------------------------------------------------------
def build_net(config: ClassifierConfig) -> MultiTaskNet:
    net = MultiTaskNet(config.arch, config.task_classes)
    if config.init_weights:
        loaded = load_init_weights(net, config.init_weights)
        log.info("classifier: %d backbone tensors from %s", loaded, config.init_weights)
    return net


def train_epochs(
    net: nn.Module,
    samples: Sequence[FaceSample],
    targets: np.ndarray,
    config: ClassifierConfig,
    device: str,
    on_epoch: Callable[[int, float], None] = lambda epoch, loss: None,
) -> None:
    """The training loop shared by the plain and the Ray Train paths."""
    losses = [
        nn.CrossEntropyLoss(weight=class_weights(targets[:, j], len(TASKS[t])).to(device), ignore_index=UNLABELLED)
        for j, t in enumerate(config.tasks)
    ]
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * max(1, -(-len(samples) // config.batch))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=steps, pct_start=0.15)
    prep = config.preprocess
    net.train()
    for epoch in range(config.epochs):
        rng = np.random.default_rng([config.seed, epoch])
        order = rng.permutation(len(samples))
        total = 0.0
        for start in range(0, len(order), config.batch):
            idx = order[start : start + config.batch]
            if len(idx) < 2:  # BatchNorm cannot train on a single sample
                continue
            x = make_batch([samples[i] for i in idx], prep, rng, augment=True).to(device)
            y = torch.from_numpy(targets[idx]).to(device)
            out = net(x)
            loss = sum(fn(out[t], y[:, j]) for j, (t, fn) in enumerate(zip(config.tasks, losses)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
        on_epoch(epoch, total / len(samples))


@torch.inference_mode()
def predict(net: nn.Module, samples: Sequence[FaceSample], config: ClassifierConfig, device: str) -> np.ndarray:
    """(n, tasks) predicted class indices on fixed (key-seeded) backgrounds."""
    net.eval()
    preds = []
    for start in range(0, len(samples), config.batch):
        chunk = samples[start : start + config.batch]
        x = torch.from_numpy(
            np.stack(
                [face_tensor(s, config.preprocess, np.random.default_rng(list(s.key.encode())), False) for s in chunk]
            )
        ).to(device)
        out = net(x)
        preds.append(np.stack([out[t].argmax(1).cpu().numpy() for t in config.tasks], axis=1))
    return np.concatenate(preds)


def _plain_device(config: ClassifierConfig) -> str:
    return config.device or ("cuda" if torch.cuda.is_available() else "cpu")


def _fit_plain(samples: Sequence[FaceSample], targets: np.ndarray, config: ClassifierConfig) -> MultiTaskNet:
    device = _plain_device(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    net = build_net(config).to(device)
    train_epochs(net, samples, targets, config, device, EpochProgress("classifier", config.epochs))
    return net.cpu()


def _ray_cluster_gpus() -> int:
    """GPUs of the Ray cluster this process is joined to (RAY_ADDRESS); 0 when not joined."""
    if not os.environ.get("RAY_ADDRESS"):
        return 0
    from factory.pipelines.runtime import init_ray

    init_ray()
    import ray

    return int(ray.cluster_resources().get("GPU", 0))


def _ray_worker_loop(loop_config: dict[str, Any]) -> None:
    """One Ray Train worker: its share of the samples, DDP through prepare_model."""
    import ray.train
    import ray.train.torch

    config: ClassifierConfig = loop_config["config"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    samples, targets = loop_config["samples"][rank::world], loop_config["targets"][rank::world]
    torch.manual_seed(config.seed)
    net = ray.train.torch.prepare_model(build_net(config))
    device = str(ray.train.torch.get_device())
    train_epochs(net, samples, targets, config, device, lambda e, l: ray.train.report({"epoch": e, "loss": l}))
    if rank == 0:
        with tempfile.TemporaryDirectory() as tmp:
            module = net.module if hasattr(net, "module") else net
            torch.save(module.state_dict(), Path(tmp) / "state.pt")
            ray.train.report({"done": 1}, checkpoint=ray.train.Checkpoint.from_directory(tmp))


def _fit_ray(samples: Sequence[FaceSample], targets: np.ndarray, config: ClassifierConfig, gpus: int) -> MultiTaskNet:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from factory.pipelines.runtime import init_ray

    init_ray()
    # One worker per GPU; on a CPU-only cluster (``--trainer ray``) one CPU worker, so the path runs anywhere.
    with tempfile.TemporaryDirectory(prefix="factory-ray-train-") as tmp:
        storage = config.ray_storage or tmp
        trainer = TorchTrainer(
            _ray_worker_loop,
            train_loop_config={"config": config, "samples": list(samples), "targets": targets},
            scaling_config=ScalingConfig(num_workers=max(1, gpus), use_gpu=gpus > 0),
            run_config=RunConfig(storage_path=storage, name="classifier"),
        )
        result = trainer.fit()
        net = MultiTaskNet(config.arch, config.task_classes)
        with result.checkpoint.as_directory() as folder:
            net.load_state_dict(torch.load(Path(folder) / "state.pt", map_location="cpu", weights_only=True))
    return net


def fit(samples: Sequence[FaceSample], targets: np.ndarray, config: ClassifierConfig) -> tuple[MultiTaskNet, str]:
    """Train with the plain loop or Ray Train (see the module doc); returns the net and the path taken."""
    gpus = _ray_cluster_gpus() if config.trainer != "plain" else 0
    if config.trainer == "ray" or (config.trainer == "auto" and gpus > 0):
        workers = f"{gpus} GPU workers" if gpus else "1 CPU worker"
        return _fit_ray(samples, targets, config, gpus), f"ray-train-torch ({workers})"
    return _fit_plain(samples, targets, config), f"plain-torch-loop ({_plain_device(config)})"


# -- the command --------------------------------------------------------------------
def evaluate(
    net: nn.Module, samples: Sequence[FaceSample], targets: np.ndarray, config: ClassifierConfig, folder: Path
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Per-task metrics on held-out samples and a confusion PNG per task."""
    preds = predict(net, samples, config, "cpu")
    metrics: dict[str, Any] = {}
    pngs: dict[str, Path] = {}
    for j, task in enumerate(config.tasks):
        mask = targets[:, j] != UNLABELLED
        matrix = confusion(targets[mask, j], preds[mask, j], len(TASKS[task]))
        metrics[task] = summarize(matrix, TASKS[task])
        metrics[f"{task}_accuracy"] = metrics[task]["accuracy"]
        pngs[task] = folder / f"confusion_{task}.png"
        plot_confusion(matrix, TASKS[task], f"{task}: held-out identities", pngs[task])
    return metrics, pngs


def _labelled(samples: list[FaceSample], targets: np.ndarray) -> tuple[list[FaceSample], np.ndarray]:
    keep = (targets != UNLABELLED).any(axis=1)
    return [s for s, k in zip(samples, keep) if k], targets[keep]


def train_classifier(data_url: str, store_url: str | None, config: ClassifierConfig = ClassifierConfig()) -> ModelRef:
    """Train, evaluate on held-out identities and publish; returns the stored model's ref."""
    table = LabelTable.from_csv(config.labels_csv) if config.labels_csv else LabelTable.empty()
    splits = identity_split(load_face_samples(data_url, config.kinds), config.test_fraction, config.seed)
    train, train_y = _labelled(splits["train"], encode_targets(splits["train"], config, table))
    test, test_y = _labelled(splits["test"], encode_targets(splits["test"], config, table))
    if not train or not test:
        raise TrainingDataError(f"need labelled samples on both sides of the split: {len(train)} train, {len(test)} test")
    log.info("classifier: %d train / %d test faces, tasks %s", len(train), len(test), ", ".join(config.tasks))
    net, trained_by = fit(train, train_y, config)
    with tempfile.TemporaryDirectory(prefix="factory-classifier-") as tmp:
        folder = Path(tmp)
        metrics, pngs = evaluate(net, test, test_y, config, folder)
        metrics.update(
            train_faces=len(train),
            test_faces=len(test),
            train_identities=len({s.model_id for s in train}),
            test_identities=len({s.model_id for s in test}),
        )
        save_checkpoint(folder / CHECKPOINT_FILE, net, config.arch, config.task_classes, config.preprocess)
        files: dict[str, Path | bytes] = {CHECKPOINT_FILE: folder / CHECKPOINT_FILE}
        files.update({p.name: p for p in pngs.values()})
        files["config.json"] = json.dumps(asdict(config), indent=1).encode()
        files["labels.json"] = json.dumps(config.task_classes).encode()
        manifest = {
            "kind": "classifier",
            "framework": f"torch-{torch.__version__}/timm",
            "trained_by": trained_by,
            "config": asdict(config),
            "label_map": config.task_classes,
            "weights": CHECKPOINT_FILE,
            "data": data_provenance(data_url),
        }
        log.info("classifier metrics: %s", {k: v for k, v in metrics.items() if k.endswith("accuracy")})
        return ModelStore(store_url).publish(config.name, files, metrics, manifest)
