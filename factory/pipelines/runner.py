"""What every pipeline shares: actor-pool stages and the run lifecycle.

A pipeline hands :func:`run` its inputs and a function that turns a Ray
Dataset of inputs into a Dataset of rows. The runner claims OUT, drops inputs
that earlier runs completed, writes through :class:`ShardDatasink`, and
finalizes OUT. Stages wrap each input in :func:`factory.rows.rows_for_input`,
so a bad input becomes one error row and the rest of the run goes on.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Callable

import ray

from factory.dataset import ResumeState, finalize, prepare
from factory.pipelines.runtime import init_ray
from factory.pipelines.progress import RunProgress
from factory.pipelines.sink import ShardDatasink
from factory.provenance import utc_now
from factory.rows import InputItem
from factory.epochs import sweep
from factory.shards import FencedOut, ShardLimits, read_markers
from factory.storage import StorageConfig, open_location

log = logging.getLogger(__name__)


def available(requested: dict[str, float]) -> dict[str, float]:
    """The requested per-actor resources that this cluster has at all.

    A GPU or a custom resource such as ``blender`` is asked for only where
    nodes advertise it; elsewhere the stage runs on CPU, so every GPU path
    also runs on a laptop or in CI. Call with Ray started.
    """
    have = ray.cluster_resources()
    return {name: amount for name, amount in requested.items() if amount > 0 and have.get(name, 0) > 0}


def actor_pool_stage(
    stage: type,
    config: Any,
    pool: tuple[int, int],
    wants: dict[str, float] | None = None,
) -> Callable[[ray.data.Dataset], ray.data.Dataset]:
    """A graph that runs ``stage(config)`` over each input row on an actor pool.

    The stage is a callable class (one input row -> its output rows, through
    :func:`rows_for_input`); the pool grows from ``pool[0]`` to ``pool[1]``
    actors. ``wants`` are per-actor resources (``GPU``, ``blender``, ...),
    requested where the cluster has them.
    """
    lo, hi = pool

    def build(ds: ray.data.Dataset) -> ray.data.Dataset:
        granted = available(wants or {})
        gpus = granted.pop("GPU", 0.0)
        return ds.flat_map(
            stage,
            fn_constructor_args=(config,),
            compute=ray.data.ActorPoolStrategy(min_size=lo, max_size=hi),
            num_gpus=gpus,
            resources=granted or None,
        )

    return build


@dataclass(frozen=True)
class RunResult:
    """What a run did: counts from dataset.json and what resume skipped."""

    dataset: dict[str, Any]
    inputs_total: int
    inputs_skipped: int
    leftovers_removed: int


def run(
    pipeline: str,
    out_url: str,
    config: dict[str, Any],
    inputs: list[InputItem],
    build: Callable[[ray.data.Dataset], ray.data.Dataset],
    limits: ShardLimits = ShardLimits(),
    storage: StorageConfig | None = None,
    resume: bool = True,
    takeover: bool = False,
) -> RunResult:
    """Run ``build`` over the inputs not yet complete under ``out_url``.

    ``takeover`` claims an OUT that a live run still owns (``--force-takeover``);
    that run's writers are fenced out.
    """
    started = utc_now()
    out = open_location(out_url, storage)
    state: ResumeState
    with prepare(out, pipeline, config, resume=resume, takeover=takeover) as state:
        todo = [i for i in inputs if i.input_id not in state.complete_inputs]
        log.info("%d inputs, %d already complete, %d to do", len(inputs), len(inputs) - len(todo), len(todo))
        if todo:
            init_ray()
            ds = ray.data.from_items([asdict(i) for i in todo], override_num_blocks=len(todo))
            with RunProgress(pipeline, len(todo)) as progress:  # lines with the known totals
                sink = ShardDatasink(out.url, state.next_shard, state.epoch, state.committed_keys, limits, storage,
                                     progress=progress.tally)
                # No task retries for the write: a retried task could commit a shard
                # twice. A failed run is resumed instead, which is exact.
                _write_fenced(build(ds), sink)
            # A stale writer may have finished a voided shard meanwhile; drop its files.
            sweep(out, read_markers(out)[1])
        info = finalize(out, pipeline, config, inputs=[(i.input_id, i.uri) for i in inputs], started=started)
    return RunResult(info, len(inputs), len(inputs) - len(todo), len(state.removed_leftovers))


def _write_fenced(ds: ray.data.Dataset, sink: ShardDatasink) -> None:
    """Write through the sink; a newer run's takeover ends this run with its one line."""
    try:
        ds.write_datasink(sink, ray_remote_args={"max_retries": 0})
    except Exception as exc:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, FencedOut):
            cause = getattr(cause, "cause", None) or cause.__cause__
        if cause is None:
            raise
        original = getattr(cause, "cause", None) or cause  # Ray's RayTaskError(FencedOut) wraps the original
        raise FencedOut(str(original).splitlines()[0]) from None
