"""A render run in its own process, for the resume-after-SIGKILL test.

``python -m tests.render_job OUT MODELS``: one Blender actor, Workbench,
small shards (2 images), so a test can kill it while shards are committed.
"""

from __future__ import annotations

import sys

from actors.blender import RendererConfig
from factory.pipelines.render import RenderRunConfig, run_render
from factory.render.jobs import RenderSettings
from factory.render.sampling import SamplingConfig
from factory.shards import ShardLimits

IMAGES = 4
SMALL = RenderRunConfig(
    RendererConfig(SamplingConfig(images_per_model=IMAGES), RenderSettings(engine="workbench", samples=8)),
    workers=(1, 1),
    limits=ShardLimits(max_samples=2),
)

if __name__ == "__main__":
    run_render(sys.argv[2], sys.argv[1], SMALL)
