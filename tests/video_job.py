"""A video-pipeline run in its own process, for the resume test.

``python -m tests.video_job OUT VIDEO [VIDEO ...]``: one sample per shard and
one actor, so a test can kill it between commits.
"""

from __future__ import annotations

import sys

from factory.pipelines.video import VideoConfig, run_video
from factory.shards import ShardLimits

ONE_PER_SHARD = VideoConfig(style_filter="any", workers=(1, 1), limits=ShardLimits(max_samples=1))

if __name__ == "__main__":
    run_video(sys.argv[2:], sys.argv[1], ONE_PER_SHARD)
