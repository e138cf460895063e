"""Connect to Ray: the cluster named by RAY_ADDRESS, or an embedded local one."""

from __future__ import annotations

import logging
import os

import ray

log = logging.getLogger(__name__)


def init_ray(num_cpus: int | None = None) -> str:
    """Start or join Ray once per process; returns a short description.

    With ``RAY_ADDRESS`` set (as ``ray job submit`` does for its entrypoint) the
    process joins that cluster; otherwise it starts an embedded local Ray with
    no dashboard, which ends with the process.
    """
    if ray.is_initialized():
        return "ray already initialised"
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
        return f"joined Ray cluster at {address}"
    ray.init(
        # "local": a new embedded instance even when `ray start` runs on this
        # machine; a bare ray.init() would attach to that cluster instead.
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        log_to_driver=True,
        # Keep the embedded Ray's object store modest on a laptop.
        object_store_memory=min(2 << 30, int(os.environ.get("FACTORY_OBJECT_STORE_BYTES", 2 << 30))),
    )
    return f"started embedded local Ray ({ray.cluster_resources().get('CPU', 0):.0f} CPUs)"


def parse_pool(spec: str) -> tuple[int, int]:
    """Parse ``MIN:MAX`` (or ``N``) into an actor pool's size bounds."""
    parts = spec.split(":")
    try:
        lo, hi = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (None, None)
    except ValueError:
        lo = hi = None
    if lo is None or hi is None or lo < 1 or hi < lo:
        raise ValueError(f"worker pool '{spec}' must be N or MIN:MAX with 1 <= MIN <= MAX")
    return lo, hi
