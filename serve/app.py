"""The Ray Serve application: face detection and age/gender classification over HTTP.

Deployments:

- ``Detector``: the YOLO face detector named in its settings, from the model
  store; MediaPipe face detection (model_selection=0, bundled with mediapipe)
  when the store has none. ``/models`` says which one answers.
- ``Classifier``: the stored EfficientNet age/gender classifier; without one,
  ``/classify`` answers 503.
- ``Ingress``: FastAPI routes POST /detect, /classify, /analyze, GET /healthz,
  /models. Images come as the raw body (image/jpeg, image/png) or multipart.

Both model deployments batch requests with ``@serve.batch``; runtime settings
(model name, threshold, batch size, limits) arrive through ``reconfigure()``
from ``user_config`` (serve/config.yaml) and unknown keys are refused. The
store URL (FACTORY_MODEL_STORE) and the optional API key (FACTORY_API_KEY,
sent as the ``X-API-Key`` header) are read once, when the app is built.

Run: ``serve run serve.app:app`` or ``serve deploy serve/config.yaml``.
"""


import asyncio
import hmac
import logging
import os
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve.handle import DeploymentHandle

from serve.images import RequestError, check_length, decode_image
from serve.settings import ClassifierSettings, DetectorSettings, IngressSettings, parse_settings

log = logging.getLogger("factory.serve")
API_KEY_HEADER = "x-api-key"


def _store(store_url: str | None):
    from factory.models import ModelStore

    return ModelStore(store_url)


# -- detector -----------------------------------------------------------------------
def _yolo_backend(store_url: str | None, settings: DetectorSettings) -> tuple[Any, dict[str, Any]]:
    from actors.detection import DetectorSettings as BackendSettings, make_detector

    stored = _store(store_url).fetch(settings.model)
    weights = stored.file(stored.manifest.get("weights", "best.pt"))
    backend = make_detector(f"yolo:{weights}", BackendSettings(min_score=settings.confidence))
    return backend, {"backend": "yolo", "model": str(stored.ref), "metrics": stored.metrics}


def _mediapipe_backend(reason: str, settings: DetectorSettings) -> tuple[Any, dict[str, Any]]:
    from actors.detection import DetectorSettings as BackendSettings, make_detector

    backend = make_detector("mediapipe", BackendSettings(min_score=settings.confidence, model_selection=0))
    return backend, {"backend": "mediapipe", "model": backend.version, "fallback_reason": reason}


def load_detector(store_url: str | None, settings: DetectorSettings) -> tuple[Any, dict[str, Any]]:
    """The stored YOLO detector, or MediaPipe when the store has no such model."""
    from factory.models import ModelStoreError

    try:
        return _yolo_backend(store_url, settings)
    except ModelStoreError as exc:
        log.warning("detector: %s; using MediaPipe face detection", exc)
        return _mediapipe_backend(str(exc), settings)


@serve.deployment(max_ongoing_requests=64, ray_actor_options={"num_cpus": 1, "num_gpus": 0})
class Detector:
    """Faces in RGB images, batched."""

    def __init__(self, store_url: str | None) -> None:
        self.store_url = store_url
        self.settings: DetectorSettings | None = None
        self.backend: Any = None
        self.info: dict[str, Any] = {}

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        settings = parse_settings(DetectorSettings, user_config)
        if self.settings is None or (settings.model, settings.confidence) != (self.settings.model, self.settings.confidence):
            self.backend, self.info = load_detector(self.store_url, settings)
        self.detect.set_max_batch_size(settings.max_batch_size)
        self.detect.set_batch_wait_timeout_s(settings.batch_wait_timeout_s)
        self.settings = settings

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.001)
    async def detect(self, images: list[np.ndarray]) -> list[list[dict[str, Any]]]:
        found = await asyncio.to_thread(self.backend, images)  # keep the replica's event loop free
        return [[d.to_json() for d in faces] for faces in found]

    def models(self) -> dict[str, Any]:
        return {**self.info, "confidence": self.settings.confidence, "max_batch_size": self.settings.max_batch_size}


# -- classifier ---------------------------------------------------------------------
@serve.deployment(max_ongoing_requests=64, ray_actor_options={"num_cpus": 0.5, "num_gpus": 0})
class Classifier:
    """Gender and age group of face images, batched; ``available`` is False without a stored model."""

    def __init__(self, store_url: str | None) -> None:
        self.store_url = store_url
        self.settings: ClassifierSettings | None = None
        self.predictor: Any = None
        self.info: dict[str, Any] = {}

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        from factory.models import ModelStoreError
        from actors.classification import load_stored_classifier

        settings = parse_settings(ClassifierSettings, user_config)
        if self.settings is None or settings.model != self.settings.model:
            try:
                self.predictor, stored = load_stored_classifier(settings.model, self.store_url)
                self.info = {"model": str(stored.ref), "tasks": self.predictor.tasks, "metrics": stored.metrics}
            except ModelStoreError as exc:
                self.predictor, self.info = None, {"model": None, "unavailable_reason": str(exc)}
        self.classify.set_max_batch_size(settings.max_batch_size)
        self.classify.set_batch_wait_timeout_s(settings.batch_wait_timeout_s)
        self.settings = settings

    def available(self) -> bool:
        return self.predictor is not None

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def classify(self, items: list[tuple[np.ndarray, list[float] | None]]) -> list[dict[str, Any]]:
        images, boxes = [i for i, _ in items], [b for _, b in items]
        return await asyncio.to_thread(self.predictor, images, boxes)

    def models(self) -> dict[str, Any]:
        return {**self.info, "max_batch_size": self.settings.max_batch_size}


# -- HTTP ingress -------------------------------------------------------------------
api = FastAPI(title="anime face factory", docs_url=None, redoc_url=None)


@api.exception_handler(RequestError)
async def _request_error(_: Request, exc: RequestError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status)


@api.exception_handler(Exception)
async def _internal_error(_: Request, exc: Exception) -> JSONResponse:
    log.exception("request failed")
    return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)


@serve.deployment(max_ongoing_requests=256, ray_actor_options={"num_cpus": 0.25, "num_gpus": 0})
@serve.ingress(api)
class Ingress:
    """Routes, limits and the API key; the models live in their own deployments."""

    def __init__(self, detector: DeploymentHandle, classifier: DeploymentHandle, api_key: str | None) -> None:
        self.detector, self.classifier, self.api_key = detector, classifier, api_key or None
        self.settings = IngressSettings()

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        self.settings = parse_settings(IngressSettings, user_config)

    def _authorise(self, request: Request) -> None:
        if self.api_key is None:
            return
        given = request.headers.get(API_KEY_HEADER)
        if given is None:
            raise RequestError(401, f"missing {API_KEY_HEADER} header")
        if not hmac.compare_digest(given.encode(), self.api_key.encode()):
            raise RequestError(403, "wrong API key")

    async def _image(self, request: Request) -> np.ndarray:
        self._authorise(request)
        limit = self.settings.max_request_bytes
        check_length(request.headers.get("content-length"), limit)
        body = bytearray()
        async for chunk in request.stream():  # stop reading at the limit, whatever Content-Length said
            body += chunk
            if len(body) > limit:
                raise RequestError(413, f"request body exceeds the limit of {limit} bytes")
        return decode_image(bytes(body), request.headers.get("content-type"), limit, self.settings.max_pixels)

    async def _require_classifier(self) -> None:
        if not await self.classifier.available.remote():
            raise RequestError(503, "no classifier in the model store; train one with 'factory train classifier'")

    @api.get("/healthz")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/models")
    async def models(self, request: Request) -> dict[str, Any]:
        self._authorise(request)
        detector, classifier = await asyncio.gather(self.detector.models.remote(), self.classifier.models.remote())
        return {"detector": detector, "classifier": classifier}

    @api.post("/detect")
    async def detect(self, request: Request) -> dict[str, Any]:
        image = await self._image(request)
        return {"faces": await self.detector.detect.remote(image), "width": image.shape[1], "height": image.shape[0]}

    @api.post("/classify")
    async def classify(self, request: Request) -> dict[str, Any]:
        image = await self._image(request)
        await self._require_classifier()
        return await self.classifier.classify.remote((image, None))

    @api.post("/analyze")
    async def analyze(self, request: Request) -> dict[str, Any]:
        image = await self._image(request)
        await self._require_classifier()
        faces = (await self.detector.detect.remote(image))[: self.settings.max_faces]
        labels = await asyncio.gather(*(self.classifier.classify.remote((image, f["bbox"])) for f in faces))
        return {"faces": [{**face, **label} for face, label in zip(faces, labels)]}


# -- the application ----------------------------------------------------------------
def build_app(args: dict[str, Any] | None = None) -> serve.Application:
    """The bound application. ``args`` (``serve run serve.app:build_app key=val``):
    ``store`` overrides FACTORY_MODEL_STORE; ``detector`` / ``classifier`` /
    ``ingress`` are user_config dicts merged over the defaults."""
    args = dict(args or {})
    store_url = args.pop("store", None) or os.environ.get("FACTORY_MODEL_STORE")
    configs = {name: dict(args.pop(name, None) or {}) for name in ("detector", "classifier", "ingress")}
    if args:
        raise ValueError(f"unknown app argument(s) {sorted(args)}; allowed: store, detector, classifier, ingress")
    detector = Detector.options(user_config=configs["detector"]).bind(store_url)
    classifier = Classifier.options(user_config=configs["classifier"]).bind(store_url)
    ingress = Ingress.options(user_config=configs["ingress"])
    return ingress.bind(detector, classifier, os.environ.get("FACTORY_API_KEY"))


app = build_app()
