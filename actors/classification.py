"""The age/gender classifier network, its checkpoint file and its predictor.

One EfficientNet backbone (timm, ``pretrained=False``) with one linear head
per task: both tasks share the features and train in one run, and one stored
model answers both (a task without labels in the data simply has no loss).
The same preprocessing (square crop around the face box, resize, ImageNet
normalisation) serves training and inference, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from factory.video.align import crop_face

ARCHS = {"b0": "efficientnet_b0", "b3": "efficientnet_b3"}
CHECKPOINT_FILE = "classifier.pt"
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)


class MultiTaskNet(nn.Module):
    """A timm backbone and a ``{task: Linear}`` head per task."""

    def __init__(self, arch: str, tasks: dict[str, Sequence[str]], dropout: float = 0.2) -> None:
        super().__init__()
        import timm

        if arch not in ARCHS:
            raise ValueError(f"unknown --arch {arch!r}; known: {', '.join(ARCHS)}")
        self.backbone = timm.create_model(ARCHS[arch], pretrained=False, num_classes=0)
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({t: nn.Linear(self.backbone.num_features, len(c)) for t, c in tasks.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.dropout(self.backbone(x))
        return {task: head(features) for task, head in self.heads.items()}


def load_init_weights(net: MultiTaskNet, path: str | Path) -> int:
    """Load a local backbone checkpoint (timm / torchvision-style state dict); returns tensors loaded.

    Classifier weights of the checkpoint are ignored (our heads differ); a file
    sharing no tensor with the backbone is an error, not a silent no-op.
    """
    state = torch.load(Path(path).expanduser(), map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    own = net.backbone.state_dict()
    usable = {k.removeprefix("backbone."): v for k, v in state.items()}
    usable = {k: v for k, v in usable.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(f"--init-weights {path}: no tensor matches the {type(net.backbone).__name__} backbone")
    net.backbone.load_state_dict(usable, strict=False)
    return len(usable)


@dataclass(frozen=True)
class Preprocess:
    """Face crop settings, stored with the model."""

    image_size: int = 128  # the paper's frontal faces are 128x128
    margin: float = 1.3  # crop side / longer edge of the face box

    def __call__(self, rgb: np.ndarray, box: tuple[float, float, float, float] | None = None) -> np.ndarray:
        """RGB uint8 image (+ face box; None: the whole image) -> CHW float32, normalised."""
        if box is None:
            h, w = rgb.shape[:2]
            box, margin = (0.0, 0.0, float(w), float(h)), 1.0
        else:
            margin = self.margin
        crop = crop_face(rgb, box, margin, self.image_size).astype(np.float32) / 255.0
        return ((crop - _MEAN) / _STD).transpose(2, 0, 1)


def save_checkpoint(path: Path, net: MultiTaskNet, arch: str, tasks: dict[str, Sequence[str]], prep: Preprocess) -> None:
    """Weights plus everything needed to rebuild the net (plain types: loads with weights_only)."""
    torch.save(
        {
            "arch": arch,
            "tasks": {t: list(c) for t, c in tasks.items()},
            "image_size": prep.image_size,
            "margin": prep.margin,
            "state_dict": net.state_dict(),
        },
        path,
    )


class ClassifierPredictor:
    """A stored classifier ready for inference: faces in, ``{task: {label, probs}}`` out."""

    def __init__(self, checkpoint: str | Path, device: str | None = None) -> None:
        data = torch.load(Path(checkpoint), map_location="cpu", weights_only=True)
        self.tasks: dict[str, list[str]] = data["tasks"]
        self.prep = Preprocess(data["image_size"], data["margin"])
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.net = MultiTaskNet(data["arch"], self.tasks)
        self.net.load_state_dict(data["state_dict"])
        self.net.to(self.device).eval()

    @torch.inference_mode()
    def __call__(
        self, images: Sequence[np.ndarray], boxes: Sequence[tuple[float, float, float, float] | None] | None = None
    ) -> list[dict[str, Any]]:
        """Classify RGB uint8 images (each cropped at its box, or whole)."""
        if not images:
            return []
        boxes = boxes or [None] * len(images)
        batch = torch.from_numpy(np.stack([self.prep(img, box) for img, box in zip(images, boxes)])).to(self.device)
        probs = {t: torch.softmax(logits, 1).cpu().numpy() for t, logits in self.net(batch).items()}
        return [
            {
                task: {
                    "label": classes[int(p[i].argmax())],
                    "probs": {c: round(float(v), 4) for c, v in zip(classes, p[i])},
                }
                for task, classes in self.tasks.items()
                for p in (probs[task],)
            }
            for i in range(len(images))
        ]


def load_stored_classifier(spec: str, store_url: str | None = None) -> tuple[ClassifierPredictor, Any]:
    """The classifier ``name`` or ``name@version`` from the model store, and its stored record."""
    from factory.models import ModelStore

    stored = ModelStore(store_url).fetch(spec)
    return ClassifierPredictor(stored.file(stored.manifest.get("weights", "classifier.pt"))), stored


def track_labels(predictor: ClassifierPredictor, faces: Sequence[np.ndarray], version: str) -> dict[str, Any]:
    """Labels of one face track: per task, the class with the highest mean probability over its faces."""
    per_face = predictor(list(faces))
    labels: dict[str, Any] = {"model_version": version, "probs": {}}
    for task in predictor.tasks:
        classes = list(per_face[0][task]["probs"])
        mean = {c: round(float(np.mean([f[task]["probs"][c] for f in per_face])), 4) for c in classes}
        labels[task] = max(mean, key=mean.get)
        labels["probs"][task] = mean
    return labels
