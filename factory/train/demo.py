"""Small detector and classifier models for `factory demo` (minutes on 2 CPU cores)."""

from __future__ import annotations

from factory.models import ModelRef
from factory.train.classifier import ClassifierConfig, train_classifier
from factory.train.detector import DetectorConfig, train_detector

# The schedules of tests/test_train_*.py (figures in docs/TRAINING.md); one torch
# thread because a busy 2-core machine made two threads up to 100x slower.
DEMO_DETECTOR = DetectorConfig(epochs=15, imgsz=128, batch=8, threads=1)
DEMO_CLASSIFIER = ClassifierConfig(epochs=15, image_size=64, batch=16, lr=3e-3, threads=1)


def train_demo_models(
    data_url: str,
    store_url: str | None,
    detector: DetectorConfig = DEMO_DETECTOR,
    classifier: ClassifierConfig = DEMO_CLASSIFIER,
) -> dict[str, ModelRef]:
    """Train and publish both models from the render shards at ``data_url``.

    The data must hold render samples with ``face_bbox`` and gender / age-group
    labels (e.g. :func:`factory.synthetic.faces.write_face_dataset`). Returns
    ``{"detector": ref, "classifier": ref}``; `serve run serve.app:app` with
    FACTORY_MODEL_STORE=store_url serves them.
    """
    return {
        "detector": train_detector(data_url, store_url, detector),
        "classifier": train_classifier(data_url, store_url, classifier),
    }
