"""Model store round trips, locally and on a real S3 API (moto)."""

from __future__ import annotations

import json

import pytest

from factory.models import ModelRef, ModelStore, ModelStoreError


def _publish(store: ModelStore, name: str, weights: bytes, acc: float):
    return store.publish(
        name,
        files={"weights.pt": weights, "labels.json": json.dumps(["male", "female", "child"]).encode()},
        metrics={"accuracy": acc},
        manifest={"config": {"arch": "efficientnet_b0"}, "data": {"url": "s3://x/ds", "shards": 3}},
    )


@pytest.mark.parametrize("where", ["local", "s3"])
def test_latest_and_pinned_versions_round_trip(where, tmp_path, request):
    url = str(tmp_path / "store") if where == "local" else f"{request.getfixturevalue('s3_env')}/models"
    store = ModelStore(url)
    assert _publish(store, "clf", b"one", 0.5) == ModelRef("clf", 1)
    assert _publish(store, "clf", b"two", 0.7) == ModelRef("clf", 2)
    latest = store.fetch("clf", cache_dir=str(tmp_path / "cache"))
    assert latest.ref == ModelRef("clf", 2)
    assert latest.file("weights.pt").read_bytes() == b"two"
    assert latest.metrics == {"accuracy": 0.7}
    assert latest.manifest["data"]["url"] == "s3://x/ds"
    pinned = store.fetch("clf@1", cache_dir=str(tmp_path / "cache"))
    assert pinned.file("weights.pt").read_bytes() == b"one"
    assert store.names() == ["clf"]


def test_uncommitted_version_is_invisible(tmp_path):
    store = ModelStore(str(tmp_path))
    _publish(store, "det", b"w", 0.9)
    (tmp_path / "det" / "2").mkdir()
    (tmp_path / "det" / "2" / "weights.pt").write_bytes(b"half-written")  # no model.json
    assert store.resolve("det") == ModelRef("det", 1)
    assert _publish(store, "det", b"w3", 0.95) == ModelRef("det", 3)


@pytest.mark.parametrize(
    "spec, message",
    [("nope", r"no model 'nope' in .* \(models there: clf\)"), ("clf@7", r"has no version 7 \(versions: \[1\]\)"),
     ("../etc", "must be letters"), ("clf@latest", "whole number")],
)
def test_bad_references_are_clear(spec, message, tmp_path):
    store = ModelStore(str(tmp_path))
    _publish(store, "clf", b"w", 0.5)
    with pytest.raises(ModelStoreError, match=message):
        store.fetch(spec)


def test_store_url_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FACTORY_MODEL_STORE", str(tmp_path / "envstore"))
    _publish(ModelStore(), "clf", b"w", 0.5)
    assert (tmp_path / "envstore" / "clf" / "1" / "model.json").is_file()


def test_the_shipped_detector_installs_as_a_new_version(tmp_path):
    from factory.models import SHIPPED_STORE, install_shipped

    store = str(tmp_path / "store")
    _publish(ModelStore(store), "detector", b"older", 0.5)
    ref = install_shipped("detector", store)
    installed = ModelStore(store).fetch("detector")
    shipped = ModelStore(str(SHIPPED_STORE)).fetch("detector")
    assert ref == installed.ref == ModelRef("detector", 2)
    assert shipped.manifest["files"] and installed.manifest["files"] == shipped.manifest["files"]
    for name in shipped.manifest["files"]:
        assert installed.file(name).read_bytes() == shipped.file(name).read_bytes()
    assert installed.metrics["real_art"] == shipped.metrics["real_art"]
    assert installed.manifest["shipped_from"] == str(shipped.ref) and installed.manifest["kind"] == "detector"
    with pytest.raises(ModelStoreError, match="no shipped model 'nope'; shipped: detector"):
        install_shipped("nope", store)
