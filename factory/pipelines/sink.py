"""A Ray Data datasink that writes rows through the factory's shard writer.

Every write task runs its own :class:`~factory.shards.ShardedWriter`, fenced by
the run's epoch; one small counter actor proposes shard numbers and each task
claims its numbers in OUT (:func:`factory.epochs.fenced_allocator`), so no two
writers, of this run or a stale one, ever share a shard. Keys
committed by earlier runs reach the tasks through the object store and are
skipped, so a resumed run adds no duplicate.
"""

from __future__ import annotations

from typing import Iterable

import ray
from ray.data.block import Block, BlockAccessor
from ray.data.datasource import Datasink
from ray.data._internal.execution.interfaces import TaskContext

from factory.epochs import fenced_allocator
from factory.pipelines.progress import InputCounter
from factory.shards import ShardedWriter, ShardLimits, ShardStats
from factory.storage import StorageConfig, open_location


@ray.remote(num_cpus=0)
class ShardCounter:
    """Hands out the next free shard number per split."""

    def __init__(self, start: dict[str, int]) -> None:
        self._next = dict(start)

    def next(self, split: str) -> int:
        n = self._next.get(split, 0)
        self._next[split] = n + 1
        return n


class ShardDatasink(Datasink[list[dict]]):
    """Writes a dataset of factory rows (see :mod:`factory.shards`) under ``out_url``."""

    def __init__(
        self,
        out_url: str,
        next_shard: dict[str, int],
        epoch: int,
        skip_keys: frozenset[str] = frozenset(),
        limits: ShardLimits = ShardLimits(),
        storage: StorageConfig | None = None,
        progress: ray.actor.ActorHandle | None = None,
    ) -> None:
        self.out_url, self.epoch, self.limits, self.storage = out_url, epoch, limits, storage
        self.progress = progress  # a ProgressTally (factory/pipelines/progress.py), or None
        # Created here, on the driver, before the write tasks are serialised.
        self._counter = ShardCounter.remote(next_shard)
        self._skip_ref = ray.put(skip_keys)
        self.stats: list[ShardStats] = []

    @property
    def min_rows_per_write(self) -> int:
        # Bundle rows so a task fills whole shards instead of many small tails.
        return self.limits.max_samples

    def write(self, blocks: Iterable[Block], ctx: TaskContext) -> list[dict]:
        out = open_location(self.out_url, self.storage)
        counter = self._counter

        def propose(split: str) -> int:
            return ray.get(counter.next.remote(split))

        writer = ShardedWriter(
            out,
            fenced_allocator(out, self.epoch, propose),
            self.limits,
            skip_keys=ray.get(self._skip_ref),
            writer_id=f"task-{ctx.task_idx}",
            epoch=self.epoch,
        )
        inputs, reported = InputCounter(), 0
        with writer:
            for block in blocks:
                done = 0
                for row in BlockAccessor.for_block(block).iter_rows(public_row_format=True):
                    writer.write(dict(row))
                    done += inputs.row(row)
                reported = self._report(writer, done, reported)
        self._report(writer, 0, reported, wait=True)  # the shards close() committed
        return [s.__dict__ for s in writer.committed]

    def _report(self, writer: ShardedWriter, inputs: int, reported: int, wait: bool = False) -> int:
        """Tell the run's tally the inputs finished and shards committed since the last report.

        ``wait``: block until the tally has it (and this task's earlier reports, which
        an actor runs in order), so the driver's last line counts every task.
        """
        shards = writer.committed[reported:]
        if self.progress is not None:
            ref = self.progress.add.remote(inputs=inputs, shards=len(shards), samples=sum(s.samples for s in shards))
            if wait:
                ray.get(ref)
        return len(writer.committed)

    def on_write_complete(self, write_result) -> None:
        self.stats = [ShardStats(**d) for task in write_result.write_returns for d in task]
