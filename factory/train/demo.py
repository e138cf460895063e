"""The models of `factory demo`: the shipped real-art detector and a small classifier (minutes on 2 CPU cores).

The demo's data (labelled synthetic faces) is enough for the classifier, but a
detector trained on it finds no real anime face (docs/TRAINING.md); so the
demo installs the detector the factory trained with its documented recipe
(factory/shipped/README.md), and `serve run serve.app:app` answers with it.
"""

from __future__ import annotations

from factory.models import ModelRef, install_shipped
from factory.train.classifier import ClassifierConfig, train_classifier

# The schedule of tests/test_train_classifier.py (figures in docs/TRAINING.md); one
# torch thread because a busy 2-core machine made two threads up to 100x slower.
DEMO_CLASSIFIER = ClassifierConfig(epochs=15, image_size=64, batch=16, lr=3e-3, threads=1)


def train_demo_models(
    data_url: str,
    store_url: str | None,
    classifier: ClassifierConfig = DEMO_CLASSIFIER,
) -> dict[str, ModelRef]:
    """Install the shipped detector and train the classifier from the render shards at ``data_url``.

    The data must hold render samples with ``face_bbox`` and gender / age-group
    labels (e.g. :func:`factory.synthetic.faces.write_face_dataset`). Returns
    ``{"detector": ref, "classifier": ref}``; `serve run serve.app:app` with
    FACTORY_MODEL_STORE=store_url serves them.
    """
    return {
        "detector": install_shipped("detector", store_url),
        "classifier": train_classifier(data_url, store_url, classifier),
    }
