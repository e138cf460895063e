"""The HTTP contract against a real `serve run serve.app:app` (subprocess, real HTTP, HAProxy ingress).

The model store is filled with a detector and a classifier trained for a
moment (their quality is not the point here; the training tests measure it).
An API key is set, so every request but /healthz must carry it. After each
bad request /healthz must still answer 200: a bad request never kills a replica.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from factory.synthetic.faces import FaceDatasetConfig, SIZE, make_characters, draw_character, write_face_dataset
from factory.train.classifier import ClassifierConfig, train_classifier
from factory.train.detector import DetectorConfig, train_detector
from tests.serve_helpers import FAST_PATH_ENV, free_port, request, serve_run

PORT = free_port()
BASE = f"http://127.0.0.1:{PORT}"
KEY = "test-key-123"
pytestmark = pytest.mark.slow


def _request(path: str, body: bytes | None = None, content_type: str | None = None, key: str | None = KEY):
    """(status, parsed JSON body) of one request to the module's server."""
    return request(BASE, path, body, content_type, key)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("serve")
    data, store_url = str(root / "renders"), str(root / "store")
    write_face_dataset(data, FaceDatasetConfig(characters=6, images_per_character=3, seed=7))
    train_detector(data, store_url, DetectorConfig(epochs=1, imgsz=64, batch=4, threads=1))
    train_classifier(data, store_url, ClassifierConfig(epochs=1, image_size=32, batch=8, threads=1))
    return store_url


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    # The fast path the cluster files turn on (HAProxy ingress, gRPC); the demo test serves the default path.
    with serve_run(store, tmp_path_factory.mktemp("serve-run"), PORT, api_key=KEY, extra_env=FAST_PATH_ENV) as proc:
        yield proc


def _face_image(fmt: str) -> bytes:
    ch = make_characters(FaceDatasetConfig(characters=3, seed=11))[0]
    rgba, _ = draw_character(ch, np.random.default_rng(0), 10.0)
    rgb = Image.new("RGB", (SIZE, SIZE), (120, 180, 220))
    rgb.paste(Image.fromarray(rgba), mask=Image.fromarray(rgba[..., 3]))
    buf = io.BytesIO()
    rgb.save(buf, format=fmt)
    return buf.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _assert_face_list(faces):
    assert isinstance(faces, list)
    for face in faces:
        assert len(face["bbox"]) == 4 and 0.0 <= face["score"] <= 1.0 and "landmarks" in face


@pytest.mark.parametrize("fmt,ctype", [("JPEG", "image/jpeg"), ("PNG", "image/png")])
def test_detect_and_classify(server, fmt, ctype):
    image = _face_image(fmt)
    status, body = _request("/detect", image, ctype)
    assert status == 200, body
    _assert_face_list(body["faces"])
    assert (body["width"], body["height"]) == (SIZE, SIZE)

    status, body = _request("/classify", image, ctype)
    assert status == 200, body
    assert body["gender"]["label"] in ("male", "female", "child")
    assert body["age_group"]["label"] in ("0-9", "10-19", "20+")
    assert sum(body["gender"]["probs"].values()) == pytest.approx(1.0, abs=1e-2)

    status, body = _request("/analyze", image, ctype)
    assert status == 200, body
    _assert_face_list(body["faces"])
    assert all("gender" in f and "age_group" in f for f in body["faces"])


def test_concurrent_classify_requests_each_get_their_own_labels(server, store):
    """Concurrent /classify calls share batches in the replica; each answer is its own image's labels."""
    from concurrent.futures import ThreadPoolExecutor

    from actors.classification import load_stored_classifier

    characters = make_characters(FaceDatasetConfig(characters=8, seed=5))
    images = []
    for i, ch in enumerate(characters):
        rgba, _ = draw_character(ch, np.random.default_rng(i), 10.0)
        rgb = Image.new("RGB", (SIZE, SIZE), (40 * i % 255, 120, 200))
        rgb.paste(Image.fromarray(rgba), mask=Image.fromarray(rgba[..., 3]))
        images.append(rgb)
    bodies = []
    for rgb in images:
        buf = io.BytesIO()
        rgb.save(buf, format="PNG")
        bodies.append(buf.getvalue())
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda b: _request("/classify", b, "image/png"), bodies * 2))
    predictor, _ = load_stored_classifier("classifier", store)
    want = predictor([np.asarray(rgb) for rgb in images], [None] * len(images))
    for i, (status, got) in enumerate(answers):
        assert status == 200, got
        expected = want[i % len(images)]
        for task in ("gender", "age_group"):
            for label, p in expected[task]["probs"].items():
                assert got[task]["probs"][label] == pytest.approx(p, abs=1e-3), (i, task)


def test_multipart_upload(server):
    boundary = "factoryboundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"f.png\"\r\n"
        "Content-Type: image/png\r\n\r\n"
    ).encode() + _face_image("PNG") + f"\r\n--{boundary}--\r\n".encode()
    status, answer = _request("/detect", body, f"multipart/form-data; boundary={boundary}")
    assert status == 200, answer
    _assert_face_list(answer["faces"])


def test_models_names_the_stored_models(server):
    status, body = _request("/models")
    assert status == 200
    assert body["detector"]["backend"] == "yolo" and body["detector"]["model"] == "detector@1"
    assert body["classifier"]["model"] == "classifier@1"



@pytest.mark.parametrize(
    "name,body,ctype,key,expected",
    [
        ("empty body", b"", "image/jpeg", KEY, 400),
        ("not an image", b"this is not an image at all", "image/png", KEY, 400),
        ("truncated jpeg", "truncated", "image/jpeg", KEY, 400),
        ("png claiming 20000x20000", _png_claiming(20000, 20000), "image/png", KEY, 413),
        ("wrong content type", "jpeg", "text/plain", KEY, 415),
        ("missing api key", "jpeg", "image/jpeg", None, 401),
        ("wrong api key", "jpeg", "image/jpeg", "nope", 403),
    ],
)
def test_bad_requests_get_json_4xx(server, name, body, ctype, key, expected):
    jpeg = _face_image("JPEG")
    payload = {"truncated": jpeg[: len(jpeg) // 2], "jpeg": jpeg}.get(body, body) if isinstance(body, str) else body
    status, answer = _request("/detect", payload, ctype, key)
    assert status == expected, (name, answer)
    assert isinstance(answer.get("error"), str) and answer["error"]
    assert _request("/healthz", key=None) == (200, {"status": "ok"})
    assert server.poll() is None


def test_fallbacks_without_stored_models(tmp_path):
    """An empty store: MediaPipe detects (and /models says so); the classifier is unavailable (503)."""
    from serve.app import ClassifierModel, load_detector
    from serve.settings import ClassifierSettings, DetectorSettings

    backend, info = load_detector(str(tmp_path), DetectorSettings())
    assert info["backend"] == "mediapipe" and "no model 'detector'" in info["fallback_reason"]
    assert backend([np.zeros((64, 64, 3), np.uint8)]) == [[]]

    classifier = ClassifierModel(str(tmp_path))
    classifier.configure(ClassifierSettings())
    assert not classifier.available() and classifier.models()["model"] is None


def test_unknown_user_config_is_refused(tmp_path):
    """reconfigure() refuses an unknown section and an unknown key inside a known one, naming it."""
    from serve.app import FaceModels, configure

    models = FaceModels(str(tmp_path))
    with pytest.raises(ValueError, match="unknown user_config section"):
        configure(models, {"ingress": {}})
    with pytest.raises(ValueError, match="unknown setting.*max_batch"):
        configure(models, {"classifier": {"max_batch": 4}})
    assert configure(models, {"limits": {"max_faces": 3}}).max_faces == 3
