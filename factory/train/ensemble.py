"""`factory ensemble`: stored YOLO detectors published as one model whose members vote on each box.

Detectors trained with different seeds make different false boxes (a
run-to-run spread as large as any recipe change, docs/TRAINING.md); voting
averages the seed out instead of picking the luckier one. The stored model
lists its members' weights (``weights``: a list), so every user of a stored
detector (``--detector yolo:NAME``, `/detect`, the demo) runs the vote of
`actors.detection.vote_merge`. Its metrics keep each member's held-out
figures and, with ``--real-art``, the ensemble's own real-art score.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from factory.models import MANIFEST, ModelRef, ModelStore, ModelStoreError, StoredModel


def _member(spec: str, store: ModelStore) -> StoredModel:
    """A stored detector: a model folder (``STORE/NAME/VERSION``) or ``NAME[@VERSION]`` in ``store``."""
    folder = Path(spec).expanduser()
    if (folder / MANIFEST).is_file():
        manifest = json.loads((folder / MANIFEST).read_text())
        model = StoredModel(ModelRef(manifest.get("name", folder.parent.name), int(manifest.get("version", 0))), folder, manifest)
    else:
        model = store.fetch(spec)
    if model.manifest.get("kind") != "detector" or not isinstance(model.manifest.get("weights"), str):
        raise ModelStoreError(f"ensemble member {spec}: not a single stored YOLO detector")
    return model


def publish_ensemble(members: list[str], store_url: str | None, name: str = "detector",
                     real_art: str | None = None, confidence: float | None = None) -> ModelRef:
    """Publish ``members`` (two or more stored detectors) as model ``name``; returns its ref.

    ``confidence`` defaults to the first member's; with ``real_art`` the
    ensemble is scored on that folder at it (evaluation only).
    """
    from factory.train.detector import real_art_metrics
    from factory.train.real_art import load_real_art

    if len(members) < 2:
        raise ModelStoreError("an ensemble needs two or more --member detectors")
    store = ModelStore(store_url)
    models = [_member(spec, store) for spec in members]
    images = load_real_art(real_art) if real_art else None  # a bad folder fails before anything is written
    first = models[0].manifest
    config = {**first["config"], "confidence": confidence if confidence is not None else first["config"]["confidence"]}
    weights = {f"member{i}.pt": m.file(m.manifest["weights"]) for i, m in enumerate(models)}
    metrics: dict[str, Any] = {"members": [{k: v for k, v in m.metrics.items() if k != "real_art"} for m in models]}
    if images is not None:
        spec = "yolo:" + "+".join(str(path) for path in weights.values())
        metrics["real_art"] = real_art_metrics(spec, images, real_art, config["confidence"], config.get("device"))
    manifest = {
        "kind": "detector",
        "framework": first["framework"],
        "config": config,
        "label_map": first["label_map"],
        "weights": sorted(weights),
        "vote": "actors.detection.vote_merge: boxes paired at IoU >= 0.5, score = sum over members / members",
        "members": [{"ref": str(m.ref), "from": str(m.path), "seed": m.manifest["config"].get("seed"),
                     "data": m.manifest.get("data"), "extra_data": m.manifest.get("extra_data")} for m in models],
    }
    return store.publish(name, weights, metrics, manifest)


def add_ensemble_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `factory ensemble`."""
    p.add_argument("--member", action="append", required=True,
                   help="a stored detector: NAME[@VERSION] in --model-store, or a model folder STORE/NAME/VERSION (repeat)")
    p.add_argument("--model-store", help="model store URL to publish into (default: FACTORY_MODEL_STORE)")
    p.add_argument("--name", default="detector", help="name of the ensemble in the store")
    p.add_argument("--real-art", help="folder of real art with boxes.json: the ensemble scored into metrics.json")
    p.add_argument("--confidence", type=float, help="default confidence (default: the first member's)")


def run_ensemble_from_args(args: argparse.Namespace) -> int:
    """Handler of `factory ensemble`: publishes, prints the stored model and its real-art score."""
    ref = publish_ensemble(args.member, args.model_store, args.name, args.real_art, args.confidence)
    stored = ModelStore(args.model_store).fetch(ref)
    print(f"stored {ref} ({len(stored.manifest['weights'])} members) in {ModelStore(args.model_store).loc.url}")
    print(json.dumps(stored.metrics.get("real_art", {}), indent=1))
    return 0
