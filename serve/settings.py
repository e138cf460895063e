"""Runtime settings of the Serve deployments: frozen dataclasses parsed from user_config.

``reconfigure(user_config)`` hands a plain dict; :func:`parse_settings`
rejects unknown keys and wrong types with a message that lists what is
allowed, so a typo in serve/config.yaml fails the deploy instead of being
ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class DetectorSettings:
    """Detector deployment: which stored model, its threshold, dynamic batching."""

    model: str = "detector"  # model store name or name@version; MediaPipe when absent
    confidence: float = 0.60  # AniVid's YOLO confidence (seed 002)
    max_batch_size: int = 8  # 1 turns batching off
    batch_wait_timeout_s: float = 0.0  # 0: a lone request runs at once; under load requests queue during a batch and form the next (docs/BENCHMARKS.md)

    def __post_init__(self) -> None:
        _check_batching(self.max_batch_size, self.batch_wait_timeout_s)
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError("confidence must lie in [0, 1]")


@dataclass(frozen=True)
class ClassifierSettings:
    """Classifier deployment: which stored model and dynamic batching."""

    model: str = "classifier"
    max_batch_size: int = 16
    batch_wait_timeout_s: float = 0.0  # as the detector's

    def __post_init__(self) -> None:
        _check_batching(self.max_batch_size, self.batch_wait_timeout_s)


@dataclass(frozen=True)
class IngressSettings:
    """Request limits of the HTTP ingress."""

    max_request_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 36_000_000  # decoded width x height (decompression bombs)
    max_faces: int = 16  # /analyze classifies at most this many faces per image

    def __post_init__(self) -> None:
        if min(self.max_request_bytes, self.max_pixels, self.max_faces) < 1:
            raise ValueError("limits must be positive")


def _check_batching(max_batch_size: int, wait_s: float) -> None:
    if max_batch_size < 1 or wait_s < 0:
        raise ValueError("max_batch_size must be >= 1 and batch_wait_timeout_s >= 0")


def parse_settings(cls: type[T], user_config: dict[str, Any] | None, base: T | None = None) -> T:
    """``base`` (or the defaults) updated from ``user_config``; unknown keys and bad types raise ValueError."""
    known = {f.name: f.type for f in fields(cls)}
    config = dict(user_config or {})
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown} for {cls.__name__}; allowed: {sorted(known)}")
    typed = {}
    for key, value in config.items():
        kind = {"int": int, "float": float, "str": str}[known[key]]
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
            raise ValueError(f"setting {key!r} must be a {known[key]}, got {value!r}")
        typed[key] = kind(value)
    return replace(base if base is not None else cls(), **typed)
