"""The Ray Serve application: face detection and age/gender classification over HTTP.

One deployment, ``FaceService``: the FastAPI ingress (POST /detect, /classify,
/analyze, GET /healthz, /models; images as the raw body, image/jpeg or
image/png, or multipart) that also holds both models:

- the detector: the YOLO face detector named in its settings, from the model
  store; MediaPipe face detection (model_selection=0, bundled with mediapipe)
  when the store has none. ``/models`` says which one answers.
- the classifier: the stored EfficientNet age/gender classifier; without one,
  ``/classify`` and ``/analyze`` answer 503.

Models in the ingress replica, not in deployments of their own: measured, a
hop from the ingress to a model replica cost more than the model on CPU
(the decoded image travelled through the object store), see
docs/BENCHMARKS.md. Each model batches with ``@serve.batch``; ``/analyze``
classifies all faces of an image in one batched call. Runtime settings
(model name, threshold, batch size, limits) arrive through ``reconfigure()``
from ``user_config`` sections ``limits``, ``detector``, ``classifier``
(serve/config.yaml); unknown sections and keys are refused. The store URL
(FACTORY_MODEL_STORE) and the optional API key (FACTORY_API_KEY, sent as the
``X-API-Key`` header) are read once, when the app is built.

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

from serve.images import RequestError, check_length, decode_image
from serve.settings import ClassifierSettings, DetectorSettings, IngressSettings, parse_settings

log = logging.getLogger("factory.serve")
API_KEY_HEADER = "x-api-key"


def _store(store_url: str | None):
    from factory.models import ModelStore

    return ModelStore(store_url)


# -- detector -----------------------------------------------------------------------
def _yolo_backend(store_url: str | None, settings: DetectorSettings) -> tuple[Any, dict[str, Any]]:
    from actors.detection import DetectorSettings as BackendSettings, make_detector, stored_spec

    stored = _store(store_url).fetch(settings.model)
    backend = make_detector(stored_spec(stored), BackendSettings(min_score=settings.confidence))  # several weights: a vote
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


class DetectorModel:
    """The detector a replica holds; reloaded only when its model or threshold changes."""

    def __init__(self, store_url: str | None) -> None:
        self.store_url = store_url
        self.settings: DetectorSettings | None = None
        self.backend: Any = None
        self.info: dict[str, Any] = {}

    def configure(self, settings: DetectorSettings) -> None:
        if self.settings is None or (settings.model, settings.confidence) != (self.settings.model, self.settings.confidence):
            self.backend, self.info = load_detector(self.store_url, settings)
        self.settings = settings

    def __call__(self, images: list[np.ndarray]) -> list[list[dict[str, Any]]]:
        return [[d.to_json() for d in faces] for faces in self.backend(images)]

    def models(self) -> dict[str, Any]:
        return {**self.info, "confidence": self.settings.confidence, "max_batch_size": self.settings.max_batch_size}


# -- classifier ---------------------------------------------------------------------
class ClassifierModel:
    """The stored age/gender classifier a replica holds; ``available`` is False without one."""

    def __init__(self, store_url: str | None) -> None:
        self.store_url = store_url
        self.settings: ClassifierSettings | None = None
        self.predictor: Any = None
        self.info: dict[str, Any] = {}

    def configure(self, settings: ClassifierSettings) -> None:
        from actors.classification import load_stored_classifier
        from factory.models import ModelStoreError

        if self.settings is None or settings.model != self.settings.model:
            try:
                self.predictor, stored = load_stored_classifier(settings.model, self.store_url)
                self.info = {"model": str(stored.ref), "tasks": self.predictor.tasks, "metrics": stored.metrics}
            except ModelStoreError as exc:
                self.predictor, self.info = None, {"model": None, "unavailable_reason": str(exc)}
        self.settings = settings

    def available(self) -> bool:
        return self.predictor is not None

    def __call__(self, images: list[np.ndarray], boxes: list[list[float] | None]) -> list[dict[str, Any]]:
        return self.predictor(images, boxes)

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


# user_config sections of FaceService and their settings
SECTIONS: dict[str, type] = {"limits": IngressSettings, "detector": DetectorSettings, "classifier": ClassifierSettings}


def configure(models: "FaceModels", user_config: dict[str, Any] | None) -> IngressSettings:
    """Apply a user_config (sections ``limits``, ``detector``, ``classifier``); the limits it sets.

    An unknown section or key raises ValueError, so a typo fails the deploy.
    """
    config = dict(user_config or {})
    unknown = sorted(set(config) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown user_config section(s) {unknown}; allowed: {list(SECTIONS)}")
    limits, detector, classifier = (parse_settings(SECTIONS[name], config.get(name)) for name in SECTIONS)
    models.configure(detector, classifier)
    return limits


class FaceModels:
    """Both models of a replica, each behind its own dynamic batch (``@serve.batch``)."""

    def __init__(self, store_url: str | None) -> None:
        self.detector, self.classifier = DetectorModel(store_url), ClassifierModel(store_url)

    def configure(self, detector: DetectorSettings, classifier: ClassifierSettings) -> None:
        self.detector.configure(detector)
        self.classifier.configure(classifier)
        self.detect.set_max_batch_size(detector.max_batch_size)
        self.detect.set_batch_wait_timeout_s(detector.batch_wait_timeout_s)
        self.classify.set_max_batch_size(classifier.max_batch_size)
        self.classify.set_batch_wait_timeout_s(classifier.batch_wait_timeout_s)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.0)
    async def detect(self, images: list[np.ndarray]) -> list[list[dict[str, Any]]]:
        return await asyncio.to_thread(self.detector, images)  # keep the replica's event loop free

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0)
    async def classify(self, requests: list[list[tuple[np.ndarray, list[float] | None]]]) -> list[list[dict[str, Any]]]:
        """Each request brings all its faces; every face of the batch goes through one predictor call."""
        faces = [face for request in requests for face in request]
        labels = await asyncio.to_thread(self.classifier, [i for i, _ in faces], [b for _, b in faces])
        out, start = [], 0
        for request in requests:
            out.append(labels[start : start + len(request)])
            start += len(request)
        return out


@serve.deployment(max_ongoing_requests=256, ray_actor_options={"num_cpus": 1, "num_gpus": 0})
@serve.ingress(api)
class FaceService:
    """Routes, limits and the API key, with both models in the same replica.

    A request is decoded once and never crosses to another replica, so Serve
    adds only its proxy hop (and none with direct ingress; see docs/SERVE.md).
    """

    def __init__(self, store_url: str | None, api_key: str | None) -> None:
        self.api_key = api_key or None
        self.models = FaceModels(store_url)
        self.limits = IngressSettings()

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        self.limits = configure(self.models, user_config)

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
        limit = self.limits.max_request_bytes
        check_length(request.headers.get("content-length"), limit)
        body = bytearray()
        async for chunk in request.stream():  # stop reading at the limit, whatever Content-Length said
            body += chunk
            if len(body) > limit:
                raise RequestError(413, f"request body exceeds the limit of {limit} bytes")
        return decode_image(bytes(body), request.headers.get("content-type"), limit, self.limits.max_pixels)

    def _require_classifier(self) -> None:
        if not self.models.classifier.available():
            raise RequestError(503, "no classifier in the model store; train one with 'factory train classifier'")

    @api.get("/healthz")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/models")
    async def models(self, request: Request) -> dict[str, Any]:
        self._authorise(request)
        return {"detector": self.models.detector.models(), "classifier": self.models.classifier.models()}

    @api.post("/detect")
    async def detect(self, request: Request) -> dict[str, Any]:
        image = await self._image(request)
        return {"faces": await self.models.detect(image), "width": image.shape[1], "height": image.shape[0]}

    @api.post("/classify")
    async def classify(self, request: Request) -> dict[str, Any]:
        image = await self._image(request)
        self._require_classifier()
        return (await self.models.classify([(image, None)]))[0]

    @api.post("/analyze")
    async def analyze(self, request: Request) -> dict[str, Any]:
        image = await self._image(request)
        self._require_classifier()
        faces = (await self.models.detect(image))[: self.limits.max_faces]
        labels = await self.models.classify([(image, f["bbox"]) for f in faces]) if faces else []
        return {"faces": [{**face, **label} for face, label in zip(faces, labels)]}


# -- the application ----------------------------------------------------------------
def build_app(args: dict[str, Any] | None = None) -> serve.Application:
    """The bound application. ``args`` (``serve run serve.app:build_app key=val``):
    ``store`` overrides FACTORY_MODEL_STORE; ``limits`` / ``detector`` /
    ``classifier`` are user_config sections merged over the defaults."""
    args = dict(args or {})
    store_url = args.pop("store", None) or os.environ.get("FACTORY_MODEL_STORE")
    config = {name: dict(args.pop(name)) for name in SECTIONS if args.get(name)}
    if args:
        raise ValueError(f"unknown app argument(s) {sorted(args)}; allowed: store, {', '.join(SECTIONS)}")
    return FaceService.options(user_config=config).bind(store_url, os.environ.get("FACTORY_API_KEY"))


app = build_app()
