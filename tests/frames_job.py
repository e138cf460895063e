"""A frame-sampling run in its own process, for the Ray resume test.

``python -m tests.frames_job OUT VIDEO [VIDEO ...]``: small shards (5 rows)
and one worker, so a test can kill it while shards are being committed.
"""

from __future__ import annotations

import sys

from factory.pipelines.frames import FramesConfig, run_frames
from factory.shards import ShardLimits

SMALL = FramesConfig(workers=(1, 1), limits=ShardLimits(max_samples=5))

if __name__ == "__main__":
    run_frames(sys.argv[2:], sys.argv[1], SMALL)
