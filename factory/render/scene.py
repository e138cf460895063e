"""A PMX model as a Blender scene: import once, then pose, light, style and render.

`ModelScene` builds, in an empty Blender file, the mesh (UVs, one material
per PMX material and shader style, textures resolved only through
``factory.sources.textures``), an armature with the model's skin weights
(vertex groups + an Armature modifier; PMX bone i is the Blender bone
`bone_names[i]`, always met by name), one shape key per vertex morph, a
camera on the face and one sun light. `ModelScene.pose` then sets morph
weights (group morphs expanded, bone morphs posed), the head angles on the
neck bone, the light and the style; `render` returns PNG bytes,
`face_bbox` the face's box (brows to chin) and `head_bbox` the head's
(fringe to chin) in image pixels.

Axes: MMD (x, y, z) becomes Blender (x, z, y) * `mmd_scale` (a reflection,
so triangles are re-wound). The character faces -y and its left is +x; the
camera sits on the -y side looking along +y, and the sun shines from the
camera side along +y onto the face (the light "along the y axis" of
AnimeCeleb). Head angles, in degrees, act on the neck bone about world axes:
yaw about +z (up; positive turns the face to the image's right), pitch about
x (positive looks up), roll about the camera axis y.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

try:
    import bpy
    from mathutils import Matrix, Quaternion, Vector
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "factory.render.scene needs Blender's Python module: pip install bpy==5.0.1 (Python 3.11 only)"
    ) from exc

from factory.render.inspection import flag_change, pixel_change
from factory.render.jobs import (
    ENGINE_NAMES,
    InspectJob,
    ModelInspection,
    ModelRender,
    MorphCheck,
    RenderedImage,
    RenderJob,
    RenderSettings,
)
from factory.render.materials import (
    EDGE_PIXELS,
    add_uv1,
    build_material,
    build_outline,
    material_images,
    ramp_image,
    set_light,
    shared_toon_ramp,
)
from factory.render.morph_apply import apply_surface_morphs
from factory.render.morphs import YAW, available_targets, map_morphs
from factory.render.sampling import sample_poses
from factory.render.styles import STYLE_REGISTRY, apply_workbench
from factory.render.styles import style as get_style
from factory.sources.models import read_model
from factory.sources.pmx_model import BoneFlag, MorphKind, PmxModel
from factory.sources.textures import TextureResolution, resolve_textures

NECK_NAMES = ("首", "neck")
HEAD_NAMES = ("頭", "head")
HAIR_WORDS = ("髪", "毛", "hair", "ヘア", "kami")  # in a material name (NFKC, casefold): not the face
_EYE_BONES = {"左目", "右目", "両目", "eye_l", "eye_r", "eye l", "eye r", "eyes", "lefteye", "righteye"}
BROW_ABOVE_IRIS = 0.7  # brow line = iris top + this x iris height (face_vertices)
BROW_FALLBACK = 0.65  # without eye bones: brow line this far from the chin to the top of the face's front
_FACE_NORMAL_Z = -0.2  # MMD normal z below this faces the camera (within ~78 degrees)
_FACE_DEPTH = 0.25  # the face lies in the front quarter of the head skin's depth; the ears behind it
_MIN_FACE_VERTICES = 20
_NAME_BYTES = 63  # Blender's longest name, in UTF-8 bytes
_MAX_GROUP_DEPTH = 8  # group morphs may nest; deeper (or cyclic) chains are cut
_APPLIED_KINDS = (MorphKind.VERTEX, MorphKind.BONE, MorphKind.MATERIAL, MorphKind.UV)


class SceneError(ValueError):
    """A model that cannot be staged for rendering (the message says why)."""


# -- engines ------------------------------------------------------------------------
def _cycles(scene, settings: RenderSettings) -> None:
    scene.render.engine = "CYCLES"
    cycles = scene.cycles
    cycles.samples = settings.samples
    cycles.use_denoising = False
    cycles.use_adaptive_sampling = settings.adaptive
    cycles.adaptive_min_samples = min(settings.min_samples, settings.samples)
    cycles.adaptive_threshold = settings.adaptive_threshold
    # every style is emission-only (styles.py): no bounce and no light sample is ever needed
    cycles.max_bounces = 0
    cycles.diffuse_bounces = cycles.glossy_bounces = cycles.transmission_bounces = cycles.volume_bounces = 0
    cycles.caustics_reflective = cycles.caustics_refractive = False
    cycles.transparent_max_bounces = 16  # stacked alpha overlays (lashes, brows, blush, the outline hull)
    cycles.use_auto_tile = False  # one 256 px tile
    # a 1-pixel box filter and blue-noise samples: the least anti-aliasing error per sample (measured)
    cycles.pixel_filter_type, cycles.filter_width = "BOX", 1.0
    cycles.sampling_pattern = "BLUE_NOISE"
    cycles.device = "GPU" if settings.gpu else "CPU"
    if settings.gpu:
        _enable_gpu()


def _enable_gpu() -> None:
    """Turn on every OptiX or CUDA device; SceneError when there is none."""
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for backend in ("OPTIX", "CUDA"):
        try:
            prefs.compute_device_type = backend
        except TypeError:
            continue
        prefs.get_devices()
        devices = [d for d in prefs.devices if d.type == backend]
        if devices:
            for device in devices:
                device.use = True
            return
    raise SceneError("no CUDA/OptiX GPU found for Cycles; render without --gpu")


def _eevee(scene, settings: RenderSettings) -> None:
    scene.render.engine = "BLENDER_EEVEE"
    scene.eevee.taa_render_samples = settings.samples


def _workbench(scene, settings: RenderSettings) -> None:
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.render_aa = "8" if settings.samples >= 8 else "FXAA"


ENGINES: dict[str, Callable] = {"cycles": _cycles, "eevee": _eevee, "workbench": _workbench}
if set(ENGINES) != set(ENGINE_NAMES):  # pragma: no cover - a programming error, caught on import
    raise ImportError(f"engine registry {sorted(ENGINES)} differs from jobs.ENGINE_NAMES {ENGINE_NAMES}")


# -- pure helpers -------------------------------------------------------------------
def _norm(name: str) -> str:
    return unicodedata.normalize("NFKC", name).strip().casefold()


def _find_bone(model: PmxModel, names: tuple[str, ...]) -> int:
    """First bone whose local, then English, NFKC-normalised name is in `names`."""
    wanted = {_norm(n) for n in names}
    for field in ("name", "name_en"):
        for i, bone in enumerate(model.bones):
            if _norm(getattr(bone, field)) in wanted:
                return i
    return -1


def find_head_bones(model: PmxModel) -> tuple[int, int]:
    """(neck, head) bone indices; one missing is taken from the hierarchy of the other.

    Names: 首 / 頭 (NFKC, so half-width and full-width forms meet), then the
    English names neck / head. SceneError when neither can be found.
    """
    neck, head = _find_bone(model, NECK_NAMES), _find_bone(model, HEAD_NAMES)
    if head < 0 and neck >= 0:
        head = next((i for i, b in enumerate(model.bones) if b.parent == neck), -1)
    if neck < 0 and head >= 0:
        neck = model.bones[head].parent
    if neck < 0 or head < 0:
        raise SceneError("no neck (首) / head (頭) bone: cannot aim the camera or turn the head")
    return neck, head


def expand_morphs(model: PmxModel, weights: Mapping[int, float]) -> dict[int, float]:
    """Resolve group morphs into the weights of the vertex, bone, material and UV morphs they drive."""
    out: dict[int, float] = defaultdict(float)

    def visit(index: int, weight: float, depth: int) -> None:
        if not 0 <= index < len(model.morphs) or weight == 0.0:
            return
        morph = model.morphs[index]
        if morph.kind is MorphKind.GROUP:
            if depth < _MAX_GROUP_DEPTH:
                for member, factor in zip(morph.offsets["index"], morph.offsets["weight"]):
                    visit(int(member), weight * float(factor), depth + 1)
        elif morph.kind in _APPLIED_KINDS:
            out[index] += weight

    for index, weight in weights.items():
        visit(index, float(weight), 0)
    return dict(out)


def _to_blender(points: np.ndarray, scale: float) -> np.ndarray:
    """MMD (x, y, z) -> Blender (x, z, y), scaled."""
    return np.asarray(points, dtype=np.float64)[..., [0, 2, 1]] * scale


def _quat_to_blender(xyzw) -> Quaternion:
    """An MMD rotation in Blender axes: the axis is mirrored, so the vector part flips sign."""
    x, y, z, w = (float(c) for c in xyzw)
    return Quaternion((w, -x, -z, -y)).normalized()


def head_rotation(yaw: float, pitch: float, roll: float) -> Matrix:
    """World rotation of the head for angles in degrees (see the module docstring)."""
    return (
        Matrix.Rotation(math.radians(yaw), 3, "Z")
        @ Matrix.Rotation(math.radians(-pitch), 3, "X")
        @ Matrix.Rotation(math.radians(roll), 3, "Y")
    )


def _clip_utf8(text: str, limit: int) -> str:
    """The longest prefix of `text` whose UTF-8 form fits in `limit` bytes."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def blender_bone_names(model: PmxModel) -> list[str]:
    """One unique, stable Blender bone name per PMX bone, in PMX order.

    The PMX name (NFC, control characters replaced, else the English name,
    else "bone"), cut to Blender's 63 bytes; a name that several bones share
    gets "#<PMX index>" appended (more "#" if that too is taken). The same
    model always gives the same names, so bones, vertex groups and the pose
    meet by name, never by list position (Blender lists pose bones in
    hierarchy order, which real models do not follow).
    """
    bases = []
    for bone in model.bones:
        name = next((n for n in (bone.name, bone.name_en) if n.strip()), "bone")
        name = "".join("_" if unicodedata.category(c) == "Cc" else c for c in unicodedata.normalize("NFC", name))
        bases.append(_clip_utf8(name.strip(), _NAME_BYTES))
    counts = Counter(bases)
    taken = {base for base in bases if counts[base] == 1}  # a name only one bone has stays as it is
    names = []
    for i, base in enumerate(bases):
        name, marks = base, 1
        while counts[base] > 1 and (name == base or name in taken):
            suffix = "#" * marks + str(i)
            name, marks = _clip_utf8(base, _NAME_BYTES - len(suffix)) + suffix, marks + 1
        taken.add(name)
        names.append(name)
    return names


def _weight_on(model: PmxModel, bones) -> np.ndarray:
    """Per vertex, the skin weight it gives to any of `bones`."""
    v = model.vertices
    return np.where(np.isin(v.bone_indices, list(bones)), v.bone_weights, 0.0).sum(axis=1)


def _material_vertices(model: PmxModel, keep: Callable) -> np.ndarray:
    """Mask of the vertices that some face of a material with keep(material) uses."""
    counts = [m.index_count // 3 for m in model.materials]
    chosen = np.repeat(np.array([bool(keep(m)) for m in model.materials], dtype=bool), counts)[: len(model.faces)]
    mask = np.zeros(len(model.vertices), dtype=bool)
    mask[model.faces[: len(chosen)][chosen].ravel()] = True
    return mask


def _is_hair(material) -> bool:
    return any(word in _norm(name) for name in (material.name, material.name_en) for word in HAIR_WORDS)


def head_vertices(model: PmxModel, head: int) -> np.ndarray:
    """The head's front: vertices mostly weighted to the head bone whose normal faces the camera (-z in MMD).

    Fringe to below the chin, hair included: what `head_bbox` boxes and the
    camera frames.
    """
    on_head = _weight_on(model, [head]) >= 0.5
    front = on_head & (model.vertices.normals[:, 2] < -0.5)
    chosen = np.flatnonzero(front if front.sum() >= 3 else on_head)
    if len(chosen) < 3:
        raise SceneError("no vertices are weighted to the head bone: cannot find the face")
    return chosen


def face_vertices(model: PmxModel, head: int) -> np.ndarray:
    """The face itself, brows to chin and between the ears, as anime face detectors box it.

    Skin: vertices weighted >= 0.5 to the head bone and used by a drawn
    (alpha > 0) material whose name is not hair (髪, hair, 毛, ...). Of those,
    the front (normal within ~78 deg of the camera), in front of the ears
    (depth in the front quarter of the skin's depth), and below the brow line
    (`brow_line`). Fewer than 20 such vertices: the head's front instead.
    """
    v = model.vertices
    skin = (_weight_on(model, [head]) >= 0.5) & _material_vertices(
        model, lambda m: m.diffuse[3] > 0 and not _is_hair(m))
    if skin.sum() < _MIN_FACE_VERTICES:
        return head_vertices(model, head)
    z = v.positions[:, 2]
    z_front, z_back = z[skin].min(), z[skin].max()
    front = skin & (v.normals[:, 2] < _FACE_NORMAL_Z) & (z <= z_front + _FACE_DEPTH * (z_back - z_front))
    if front.sum() < _MIN_FACE_VERTICES:
        return head_vertices(model, head)
    face = front & (v.positions[:, 1] <= brow_line(model, front))
    return np.flatnonzero(face) if face.sum() >= _MIN_FACE_VERTICES else head_vertices(model, head)


def brow_line(model: PmxModel, front: np.ndarray) -> float:
    """MMD height of the brows: iris top + 0.7 x iris height, irises being the eye bones' front vertices.

    Eye bones by name (左目 / 右目 / 両目, eye_L / eye_R); without >= 6 such
    vertices, 65 % of the way from the chin (lowest `front` vertex) to the
    top of `front`. On Gene the irises span y 17.73-18.12, so the line sits
    at 18.39, on the drawn brows.
    """
    y = model.vertices.positions[:, 1]
    eyes = [i for i, b in enumerate(model.bones) if _norm(b.name) in _EYE_BONES or _norm(b.name_en) in _EYE_BONES]
    iris = (_weight_on(model, eyes) >= 0.5) & (model.vertices.normals[:, 2] < 0) if eyes else np.zeros(len(y), bool)
    if iris.sum() >= 6:
        top, bottom = y[iris].max(), y[iris].min()
        return float(top + BROW_ABOVE_IRIS * (top - bottom))
    chin, top = y[front].min(), y[front].max()
    return float(chin + BROW_FALLBACK * (top - chin))


def reset_blender() -> None:
    """An empty Blender file: every datablock of the previous model is gone."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.data.orphans_purge(do_recursive=True)


# -- the scene ----------------------------------------------------------------------
class ModelScene:
    """One imported model, ready to be posed and rendered many times."""

    def __init__(self, model: PmxModel, model_dir: str | os.PathLike | None, settings: RenderSettings = RenderSettings()):
        self.model, self.settings = model, settings
        self.warnings: list[str] = []
        self.neck, self.head = find_head_bones(model)
        self.face_indices = face_vertices(model, self.head)  # face_bbox: brows to chin
        # head_bbox and the camera: the head's front, fringe to chin, and never narrower than the face
        self.head_indices = np.union1d(head_vertices(model, self.head), self.face_indices)
        self.bone_names = blender_bone_names(model)  # PMX bone i is the Blender bone bone_names[i]
        self._posed: np.ndarray | None = None
        reset_blender()
        self.scene = bpy.context.scene
        self._tmp = tempfile.TemporaryDirectory(prefix="factory-render-")
        self._images = self._load_textures(model_dir)
        self._materials: dict[str, list] = {}
        self.mesh_obj = self._build_mesh()
        self.arm_obj = self._build_armature()
        self._shape_keys = self._build_shape_keys()
        self.camera = self._build_camera()
        self._toons: dict[int, object] = {}
        self.outline = self._build_outline()
        self.set_light(0.6)
        self._setup_render()
        self.style = ""
        self.set_style(next(iter(STYLE_REGISTRY)))

    @classmethod
    def from_file(cls, path: str | os.PathLike, settings: RenderSettings = RenderSettings()) -> ModelScene:
        """Read a .pmx/.pmd file and import it; textures resolve inside its folder."""
        path = Path(path)
        return cls(read_model(path), path.parent, settings)

    # -- import -----------------------------------------------------------------
    def _load_textures(self, model_dir) -> list:
        """bpy images per texture index (None where unusable, with a warning, listed in missing_textures)."""
        if model_dir is None:  # an in-memory model: nothing to resolve against
            resolutions = tuple(TextureResolution(raw, None, "missing: no model folder") for raw in self.model.textures)
        else:
            resolutions = resolve_textures(self.model.textures, model_dir)
        images = []
        for res in resolutions:
            image = None
            if res.ok:
                try:
                    image = bpy.data.images.load(str(res.path), check_existing=True)
                    image.alpha_mode = "STRAIGHT"
                    image.colorspace_settings.name = "Non-Color"  # shading maths in display values (materials.py)
                    if image.size[0] == 0:
                        raise RuntimeError("image has no pixels")
                except RuntimeError as exc:
                    image = None
                    self.warnings.append(f"texture '{res.raw}': unreadable ({str(exc).splitlines()[0]})")
            else:
                self.warnings.append(f"texture '{res.raw}': {res.reason}; using the material colour")
            images.append(image)
        self.missing_textures = [res.raw for res, image in zip(resolutions, images) if image is None]
        for material in self.model.materials:
            if material.texture >= len(images):
                self.warnings.append(f"material '{material.name}': texture index {material.texture} out of range")
        return images

    def _build_mesh(self):
        model, scale = self.model, self.settings.mmd_scale
        positions = _to_blender(model.vertices.positions, scale)
        faces = model.faces[:, [0, 2, 1]]  # re-wound: the axis swap mirrors the mesh
        mesh = bpy.data.meshes.new("model")
        mesh.from_pydata(positions, [], faces.tolist())
        uv = model.vertices.uvs[faces.ravel()].astype(np.float64)
        uv[:, 1] = 1.0 - uv[:, 1]  # MMD's v runs down the image
        mesh.uv_layers.new(name="UV").data.foreach_set("uv", uv.ravel())
        counts = np.array([m.index_count // 3 for m in model.materials], dtype=np.int64)
        if counts.sum() != len(faces):
            self.warnings.append(f"materials cover {counts.sum()} of {len(faces)} faces")
        slots = np.repeat(np.arange(len(counts)), counts)[: len(faces)]
        slots = np.pad(slots, (0, len(faces) - len(slots)), constant_values=max(len(counts) - 1, 0))
        for _ in model.materials:
            mesh.materials.append(None)
        mesh.polygons.foreach_set("material_index", slots.astype(np.int32))
        mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), dtype=bool))
        mesh.validate(clean_customdata=False)
        normals = _to_blender(model.vertices.normals, 1.0)
        if len(mesh.vertices) == len(normals):
            mesh.normals_split_custom_set_from_vertices(normals.tolist())
        obj = bpy.data.objects.new("model", mesh)
        self.scene.collection.objects.link(obj)
        return obj

    def _build_armature(self):
        model, scale = self.model, self.settings.mmd_scale
        data = bpy.data.armatures.new("skeleton")
        arm = bpy.data.objects.new("skeleton", data)
        self.scene.collection.objects.link(arm)
        bpy.context.view_layer.objects.active = arm
        bpy.ops.object.mode_set(mode="EDIT")
        heads = _to_blender([b.position for b in model.bones], scale) if model.bones else np.zeros((0, 3))
        edit = [data.edit_bones.new(name) for name in self.bone_names]
        self.bone_names = [e.name for e in edit]  # as Blender stored them (it renames a clash)
        for i, bone in enumerate(model.bones):
            edit[i].head = heads[i]
            edit[i].tail = self._bone_tail(i, heads)
            if 0 <= bone.parent < len(edit) and bone.parent != i:
                edit[i].parent = edit[bone.parent]
        bpy.ops.object.mode_set(mode="OBJECT")
        self._add_vertex_groups()
        modifier = self.mesh_obj.modifiers.new("Armature", "ARMATURE")
        modifier.object = arm
        for pose_bone in arm.pose.bones:
            pose_bone.rotation_mode = "QUATERNION"
        return arm

    def _bone_tail(self, i: int, heads: np.ndarray) -> np.ndarray:
        """Tail of bone i: its tail bone or offset; a short stub along +z when that has no length."""
        bone, scale = self.model.bones[i], self.settings.mmd_scale
        if bone.flags & BoneFlag.TAIL_IS_BONE:
            tail = heads[bone.tail] if 0 <= bone.tail < len(heads) else heads[i]
        else:
            tail = heads[i] + _to_blender(bone.tail, scale)
        if np.linalg.norm(tail - heads[i]) < 1e-4:
            tail = heads[i] + (0.0, 0.0, 0.05 * scale)
        return tail

    def _add_vertex_groups(self) -> None:
        """Skin weights as vertex groups; weights are grouped (to 1/1000) to keep bpy calls few."""
        v = self.model.vertices
        groups = {}
        valid = (v.bone_indices >= 0) & (v.bone_indices < len(self.model.bones)) & (v.bone_weights > 0)
        rows, cols = np.nonzero(valid)
        bones = v.bone_indices[rows, cols]
        weights = np.round(v.bone_weights[rows, cols], 3)
        order = np.lexsort((weights, bones))
        rows, bones, weights = rows[order], bones[order], weights[order]
        keys = np.stack([bones, weights * 1000], axis=1)
        starts = np.flatnonzero(np.r_[True, np.any(np.diff(keys, axis=0) != 0, axis=1)])
        for start, end in zip(starts, np.r_[starts[1:], len(rows)]):
            bone = int(bones[start])
            if bone not in groups:  # the Armature modifier pairs a group with the bone of its name
                groups[bone] = self.mesh_obj.vertex_groups.new(name=self.bone_names[bone])
            groups[bone].add(rows[start:end].tolist(), float(weights[start]), "ADD")

    def _build_shape_keys(self) -> dict[int, object]:
        """One shape key per vertex morph (offsets in bounds only)."""
        obj, n = self.mesh_obj, len(self.model.vertices)
        base = _to_blender(self.model.vertices.positions, self.settings.mmd_scale)
        obj.shape_key_add(name="Basis", from_mix=False)
        keys = {}
        for i, morph in enumerate(self.model.morphs):
            if morph.kind is not MorphKind.VERTEX:
                continue
            index = morph.offsets["index"]
            ok = (index >= 0) & (index < n)
            co = base.copy()
            np.add.at(co, index[ok], _to_blender(morph.offsets["offset"][ok], self.settings.mmd_scale))
            key = obj.shape_key_add(name=f"m{i:04d}", from_mix=False)
            key.data.foreach_set("co", co.astype(np.float32).ravel())
            key.slider_max = 10.0  # group morphs may add up past 1
            keys[i] = key
        return keys

    def _rest_face(self) -> tuple[np.ndarray, np.ndarray]:
        """Rest box of the head's front (Blender axes): what the camera frames, as before face_bbox was the face."""
        points = _to_blender(self.model.vertices.positions[self.head_indices], self.settings.mmd_scale)
        return points.min(axis=0), points.max(axis=0)

    def _build_camera(self):
        low, high = self._rest_face()
        centre = (low + high) / 2
        half = max(high[0] - low[0], high[2] - low[2]) / 2 * self.settings.frame_margin
        data = bpy.data.cameras.new("camera")
        data.lens = self.settings.focal_mm
        data.sensor_fit = "HORIZONTAL"
        fov = 2 * math.atan(data.sensor_width / (2 * data.lens))
        distance = half / math.tan(fov / 2)
        data.clip_start, data.clip_end = distance * 0.05, distance * 20
        camera = bpy.data.objects.new("camera", data)
        camera.location = (centre[0], low[1] - distance, centre[2])
        camera.rotation_euler = (math.pi / 2, 0.0, 0.0)  # looks along +y, up is +z
        self.scene.collection.objects.link(camera)
        self.scene.camera = camera
        return camera

    def _pixel_size(self) -> float:
        """Metres one image pixel spans at the depth of the face (outline widths are in pixels)."""
        low, high = self._rest_face()
        forward = self.camera.rotation_euler.to_matrix() @ Vector((0.0, 0.0, -1.0))
        depth = (Vector((low + high) / 2) - self.camera.location).dot(forward)
        return 2 * depth * math.tan(self.camera.data.angle / 2) / self.settings.resolution

    def _build_outline(self):
        """The inverted-hull outline (materials.py), lines EDGE_PIXELS px per unit edge size at 256 px."""
        return build_outline(self.scene, self.mesh_obj, self.arm_obj, self.model,
                             self._pixel_size() * EDGE_PIXELS * self.settings.resolution / 256)

    def set_light(self, intensity: float) -> None:
        """MMD's light colour (a grey level; the sample's light intensity) for every shaded object."""
        set_light([o for o in (self.mesh_obj, self.outline) if o is not None], intensity)

    def _setup_render(self) -> None:
        s, r = self.settings, self.scene.render
        ENGINES[s.engine](self.scene, s)
        r.resolution_x = r.resolution_y = s.resolution
        r.resolution_percentage = 100
        r.film_transparent = True
        r.use_persistent_data = True  # keep textures, shaders and unchanged objects between renders
        r.use_compositing = r.use_sequencer = False
        r.dither_intensity = 0.0  # no noise added when quantising to 8 bits
        r.threads_mode = "FIXED" if s.threads else "AUTO"
        if s.threads:
            r.threads = s.threads
        r.image_settings.file_format = "PNG"
        r.image_settings.color_mode = "RGBA"
        r.image_settings.color_depth = "8"
        r.filepath = os.path.join(self._tmp.name, "frame.png")
        # shading runs in display values, as MMD's does (materials.py): a texel renders as its own value
        self.scene.view_settings.view_transform = "Raw"
        self.scene.view_settings.look = "None"

    # -- materials ----------------------------------------------------------------
    def _material(self, index: int, style_name: str):
        """PMX material `index` as a node tree of one style (materials.py)."""
        pmx, look = self.model.materials[index], get_style(style_name)
        images = material_images(pmx, self._images, self._shared_toon)
        sub_uv = pmx.sphere_mode == 3 and add_uv1(self.mesh_obj.data, self.model)
        return build_material(f"{style_name}-{index}", index, pmx, images, look.color, look.edges, sub_uv)

    def _shared_toon(self, index: int):
        """The stand-in ramp image of MMD's shared toon `index` (made once per scene); None if out of range."""
        if index not in self._toons:
            self._toons[index] = ramp_image(f"toon{index + 1:02d}", shared_toon_ramp(index)) if 0 <= index < 10 else None
        return self._toons[index]

    def set_style(self, name: str) -> None:
        """Switch every material to a shader style (materials are built once per style)."""
        look = get_style(name)
        if name not in self._materials:
            self._materials[name] = [self._material(i, name) for i in range(len(self.model.materials))]
        for slot, mat in enumerate(self._materials[name]):
            self.mesh_obj.data.materials[slot] = mat
        if self.outline is not None:  # Workbench ignores node trees: it would draw the hull as a fat shell
            self.outline.hide_render = not look.edges or self.settings.engine == "workbench"
        apply_workbench(self.scene, look.workbench)
        self.style = name

    # -- posing -------------------------------------------------------------------
    def pose(self, morphs: Mapping[int, float], yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0,
             light_intensity: float = 0.6, style: str | None = None) -> None:
        """Set source morph weights (by morph index; others go to 0), head angles, light and style."""
        self._posed = None  # posed_positions() of the previous pose are stale
        weights = expand_morphs(self.model, morphs)
        for index, key in self._shape_keys.items():
            key.value = weights.get(index, 0.0)
        rotations: dict[int, Quaternion] = defaultdict(Quaternion)
        moves: dict[int, Vector] = defaultdict(Vector)
        for index, weight in weights.items():
            morph = self.model.morphs[index]
            if morph.kind is not MorphKind.BONE:
                continue
            for row in morph.offsets:
                bone = int(row["index"])
                if 0 <= bone < len(self.model.bones):
                    rotations[bone] = rotations[bone] @ Quaternion().slerp(_quat_to_blender(row["rotation"]), weight)
                    moves[bone] += Vector(_to_blender(row["translation"], self.settings.mmd_scale)) * weight
        rotations[self.neck] = head_rotation(yaw, pitch, roll).to_quaternion() @ rotations[self.neck]
        self._apply_bone_pose(rotations, moves)
        self.set_light(light_intensity)
        if style is not None and style != self.style:
            self.set_style(style)
        apply_surface_morphs(self.model, self.mesh_obj, weights)  # material and UV morphs (morph_apply.py)
        bpy.context.view_layer.update()

    def _apply_bone_pose(self, rotations: Mapping[int, Quaternion], moves: Mapping[int, Vector]) -> None:
        """World-axis rotations / moves about each bone's head, written in the bone's rest frame.

        Keyed by PMX bone index; each finds its pose bone by name (Blender's
        pose.bones are in hierarchy order, not the file's).
        """
        bones = self.arm_obj.pose.bones
        for i, name in enumerate(self.bone_names):
            pose_bone = bones[name]
            rest = pose_bone.bone.matrix_local.to_3x3()
            local = rest.inverted() @ rotations.get(i, Quaternion()).to_matrix() @ rest
            pose_bone.rotation_quaternion = local.to_quaternion()
            pose_bone.location = rest.inverted() @ moves.get(i, Vector())

    # -- outputs ------------------------------------------------------------------
    def face_bbox(self) -> list[float]:
        """[x0, y0, x1, y1] in image pixels (y down) of the posed face: brows to chin, between the ears."""
        return self.bbox_of(self.face_indices)

    def head_bbox(self) -> list[float]:
        """[x0, y0, x1, y1] in image pixels of the posed head's front: fringe to below the chin."""
        return self.bbox_of(self.head_indices)

    def bbox_of(self, indices: np.ndarray) -> list[float]:
        """Image-pixel box [x0, y0, x1, y1] of some model vertices in the current pose."""
        xy = self.project(self.posed_positions()[np.asarray(indices)])
        return [float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())]

    def posed_positions(self) -> np.ndarray:
        """(n, 3) world positions of the model's vertices in the current pose (armature and shape keys applied).

        Computed once per pose() and kept until the next.
        """
        if self._posed is None:
            depsgraph = bpy.context.evaluated_depsgraph_get()
            evaluated = self.mesh_obj.evaluated_get(depsgraph)
            mesh = evaluated.to_mesh()
            try:
                co = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
                mesh.vertices.foreach_get("co", co)
            finally:
                evaluated.to_mesh_clear()
            world = np.array(self.mesh_obj.matrix_world)
            self._posed = co.reshape(-1, 3).astype(np.float64) @ world[:3, :3].T + world[:3, 3]
        return self._posed

    def project(self, points: np.ndarray) -> np.ndarray:
        """(n, 2) image pixels (x right, y down) of world points: bpy's world_to_camera_view, for many at once."""
        inverse = np.array(self.camera.matrix_world.normalized().inverted())
        local = np.asarray(points, dtype=np.float64) @ inverse[:3, :3].T + inverse[:3, 3]
        top_right, bottom_right, bottom_left = (np.array(v) for v in self.camera.data.view_frame(scene=self.scene)[:3])
        # the view frame lies at depth -bottom_left.z; a point at depth d sees it scaled by d / that
        at_frame = local[:, :2] * (-bottom_left[2] / -local[:, 2:3])
        x = (at_frame[:, 0] - bottom_left[0]) / (bottom_right[0] - bottom_left[0])
        y = (at_frame[:, 1] - bottom_right[1]) / (top_right[1] - bottom_right[1])
        size = self.settings.resolution
        return np.stack([x * size, (1.0 - y) * size], axis=1)

    def render(self) -> bytes:
        """Render the current pose; PNG bytes (RGBA, transparent background), the style's post step applied."""
        bpy.ops.render.render(write_still=True)
        png = Path(self.scene.render.filepath).read_bytes()
        post = get_style(self.style).post
        return png if post is None else _png(post(_rgba(png)))

    def render_fixed(self, samples: int = 128) -> bytes:
        """`render` with Cycles at a fixed `samples` a pixel (no adaptive stop): at 128, the
        converged image noise is measured against. The scene's own sampling is restored after."""
        cycles, render = self.scene.cycles, self.scene.render
        kept = cycles.samples, cycles.use_adaptive_sampling
        # A persistent session keeps its sampling: render this one without it, so the
        # next render starts a fresh session with the scene's own settings again.
        render.use_persistent_data = False
        try:
            cycles.samples, cycles.use_adaptive_sampling = samples, False
            return self.render()
        finally:
            cycles.samples, cycles.use_adaptive_sampling = kept
            render.use_persistent_data = True

    def close(self) -> None:
        """Drop the model's datablocks and the temp folder."""
        reset_blender()
        self._tmp.cleanup()


# -- jobs (run in the Blender child process of actors/blender.py) -------------------
def render_model(job: RenderJob) -> ModelRender:
    """Import one model and render all its sampled images; the scene is dropped after."""
    model = read_model(job.path)
    targets = job.targets if job.targets is not None else available_targets(map_morphs(model.morphs))
    warnings = [] if targets else ["no target morphs found: neutral expressions only"]
    bad = {t: i for t, i in targets.items() if not 0 <= i < len(model.morphs)}
    if bad:
        raise SceneError(f"annotation names morph indices the model lacks: {sorted(bad.items())}")
    scene = ModelScene(model, Path(job.path).parent, job.settings)
    try:
        images = []
        for sample in sample_poses(job.model_id, targets, job.sampling):
            yaw, pitch, roll = sample.pose[YAW:]
            morphs = {targets[t]: w for t, w in sample.morphs.items()}
            scene.pose(morphs, yaw, pitch, roll, sample.light_intensity, sample.style)
            images.append(RenderedImage(sample, scene.render(), scene.face_bbox(), scene.head_bbox()))
        return ModelRender(model.info.name, dict(targets), warnings + scene.warnings, images, scene.missing_textures)
    finally:
        scene.close()


def _rgba(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def _png(rgba: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba, dtype=np.uint8)).save(out, "PNG", compress_level=1)
    return out.getvalue()


def inspect_model(job: InspectJob) -> ModelInspection:
    """Map the model's morphs by name, then render neutral vs each mapped morph at weight 1."""
    model = read_model(job.path)
    cfg = job.inspection
    scene = ModelScene(model, Path(job.path).parent, cfg.settings)
    try:
        scene.pose({}, style=cfg.style)
        neutral, bbox = _rgba(scene.render()), scene.head_bbox()  # the part bands are head-box shares
        checks = []
        for match in map_morphs(model.morphs):
            morph = model.morphs[match.index]
            row = MorphCheck(match.index, morph.name, morph.name_en, morph.panel, morph.kind.name,
                             match.target, match.part and str(match.part), match.side and str(match.side),
                             match.method)
            if match.target is not None:
                scene.pose({match.index: 1.0}, style=cfg.style)
                change = pixel_change(neutral, _rgba(scene.render()), bbox, cfg.pixel_threshold)
                row = replace(row, changed_pixels=change.changed_pixels, changed_face=change.changed_face,
                              outside_share=change.outside_share, centroid_v=change.centroid_v,
                              flag=flag_change(change, row.part, cfg))
            checks.append(row)
        return ModelInspection(model.info.name, bbox, checks, list(scene.warnings))
    finally:
        scene.close()
