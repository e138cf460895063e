"""What the renderer is asked to do and what it answers: plain, picklable data.

These cross the pipe between a Ray actor (which never imports bpy) and its
Blender child process (``factory.render.scene`` runs them), so they import
nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from factory.render.sampling import STYLES, PoseSample, SamplingConfig

ENGINE_NAMES = ("cycles", "eevee", "workbench")


@dataclass(frozen=True)
class RenderSettings:
    """How images are rendered. Defaults: CPU Cycles (emission-only styles), adaptive sampling
    of 8-64 samples a pixel, 256x256 RGBA."""

    engine: str = "cycles"  # cycles | eevee | workbench
    # Samples a pixel: Cycles' most (adaptive sampling stops a pixel sooner), EEVEE's TAA
    # samples, Workbench's anti-aliasing (8 from 8 up).
    samples: int = 64
    # Cycles: every pixel takes min_samples, then stops once its noise is under the
    # threshold. Emission-only shading leaves no noise inside a surface, so flat pixels stop
    # at 8 and only edges and alpha overlays go on (docs/BENCHMARKS.md). 0: every pixel
    # takes `samples`.
    min_samples: int = 8
    adaptive_threshold: float = 0.005
    gpu: bool = False  # Cycles on CUDA/OptiX, when the machine has one
    resolution: int = 256
    mmd_scale: float = 0.08  # metres per MMD unit
    frame_margin: float = 1.7  # framed half-size / half-size of the face's rest box
    focal_mm: float = 50.0
    threads: int = 0  # render threads; 0 = all cores

    def __post_init__(self) -> None:
        if self.engine not in ENGINE_NAMES:
            raise ValueError(f"unknown engine '{self.engine}'; known: {list(ENGINE_NAMES)}")
        if self.samples < 1 or self.min_samples < 1 or self.resolution < 8:
            raise ValueError("samples and min_samples must be >= 1 and resolution >= 8")
        if self.adaptive_threshold < 0:
            raise ValueError("adaptive_threshold must be >= 0 (0: no adaptive sampling)")

    @property
    def adaptive(self) -> bool:
        """Whether Cycles samples adaptively (some pixels stop before `samples`)."""
        return self.engine == "cycles" and self.adaptive_threshold > 0 and self.samples > self.min_samples

    def metadata(self) -> dict:
        """The sampling fields of a render's json."""
        if not self.adaptive:
            return {"samples": self.samples}
        return {"samples": self.samples, "min_samples": self.min_samples, "adaptive_threshold": self.adaptive_threshold}


@dataclass(frozen=True)
class RenderJob:
    """Render every sampled image of one model file."""

    path: str
    model_id: str
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    settings: RenderSettings = field(default_factory=RenderSettings)
    targets: dict[str, int] | None = None  # target -> source morph index; None: map by name


@dataclass(frozen=True)
class RenderedImage:
    """One rendered sample."""

    sample: PoseSample
    png: bytes
    face_bbox: list[float]  # the face: brows to chin, between the ears (image pixels, y down)
    head_bbox: list[float]  # the head's front, fringe and hair included: fringe to below the chin


@dataclass(frozen=True)
class ModelRender:
    """Everything rendered for one model."""

    model_name: str
    targets: dict[str, int]
    warnings: list[str]
    images: list[RenderedImage]
    missing_textures: list[str] = field(default_factory=list)  # PMX texture paths drawn with the diffuse colour


@dataclass(frozen=True)
class InspectionSettings:
    """Render-diff inspection: what counts as a changed pixel and where each part belongs.

    The renders take the dataset's own shading path (its engine, samples and
    textured style) at a lower resolution, so a morph is judged on what the
    dataset would show: an untextured look draws a textured model as one
    flat silhouette, where no expression changes a pixel. Bands are vertical
    positions inside the head box (head_bbox; 0 top, 1 bottom) where the
    centroid of a part's changed pixels may lie.
    """

    settings: RenderSettings = field(default_factory=lambda: RenderSettings(resolution=128))
    style: str = "textured_toon"  # the dataset's textured style (a name in the style registry)
    pixel_threshold: int = 24  # of 255, on any RGBA channel
    min_changed_pixels: int = 3  # fewer is "dead"; at 128 px the least of Gene's mapped morphs changes 6
    max_outside_share: float = 0.5
    bands: tuple[tuple[str, float, float], ...] = (
        ("eyes", 0.25, 0.85),
        ("eyebrows", 0.0, 0.65),
        ("mouth", 0.55, 1.1),
    )

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"unknown inspection style '{self.style}'; known: {sorted(STYLES)}")


@dataclass(frozen=True)
class InspectJob:
    """Inspect the mapped morphs of one model by rendering them."""

    path: str
    model_id: str
    inspection: InspectionSettings = field(default_factory=InspectionSettings)


@dataclass(frozen=True)
class MorphCheck:
    """Inspection of one source morph (the annotation table row without the model columns)."""

    index: int
    name: str
    name_en: str
    panel: int
    kind: str
    target: str | None
    part: str | None
    side: str | None
    method: str
    changed_pixels: int = 0
    changed_face: float = 0.0  # share of the head box's (head_bbox) pixels that changed
    outside_share: float = 0.0  # share of the changed pixels outside the head box
    centroid_v: float | None = None  # vertical centroid of the change inside the head box, 0 top .. 1 bottom
    flag: str = "not_inspected"  # ok | dead | outside_face | wrong_part | not_inspected


@dataclass(frozen=True)
class ModelInspection:
    """The inspected annotation rows of one model."""

    model_name: str
    face_bbox: list[float]  # the box the checks measure in: the neutral render's head_bbox
    morphs: list[MorphCheck]
    warnings: list[str]
