"""A PMX model as a Blender scene: import once, then pose, light, style and render.

`ModelScene` builds, in an empty Blender file, the mesh (UVs, one material
per PMX material and shader style, textures resolved only through
``factory.sources.textures``), an armature with the model's skin weights
(vertex groups + an Armature modifier), one shape key per vertex morph, a
camera on the face and one sun light. `ModelScene.pose` then sets morph
weights (group morphs expanded, bone morphs posed), the head angles on the
neck bone, the light and the style; `render` returns PNG bytes and
`face_bbox` the face's box in image pixels.

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
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

try:
    import bpy
    from bpy_extras.object_utils import world_to_camera_view
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
from factory.render.morph_apply import MATERIAL_INDEX_PROP, apply_surface_morphs, morph_input
from factory.render.morphs import YAW, available_targets, map_morphs
from factory.render.sampling import sample_poses
from factory.render.styles import STYLE_REGISTRY, apply_workbench, style as get_style
from factory.sources.models import read_model
from factory.sources.pmx_model import BoneFlag, MorphKind, PmxModel
from factory.sources.textures import TextureResolution, resolve_textures

NECK_NAMES = ("首", "neck")
HEAD_NAMES = ("頭", "head")
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
    cycles.use_adaptive_sampling = False
    cycles.max_bounces = 2  # toon faces need direct light and little else
    cycles.transparent_max_bounces = 8
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


def face_vertices(model: PmxModel, head: int) -> np.ndarray:
    """Vertices mostly weighted to the head bone whose normal faces the camera (-z in MMD)."""
    v = model.vertices
    on_head = np.where(v.bone_indices == head, v.bone_weights, 0.0).sum(axis=1) >= 0.5
    front = on_head & (v.normals[:, 2] < -0.5)
    chosen = np.flatnonzero(front if front.sum() >= 3 else on_head)
    if len(chosen) < 3:
        raise SceneError("no vertices are weighted to the head bone: cannot find the face")
    return chosen


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
        self.face_indices = face_vertices(model, self.head)
        reset_blender()
        self.scene = bpy.context.scene
        self._tmp = tempfile.TemporaryDirectory(prefix="factory-render-")
        self._images = self._load_textures(model_dir)
        self._materials: dict[str, list] = {}
        self.mesh_obj = self._build_mesh()
        self.arm_obj = self._build_armature()
        self._shape_keys = self._build_shape_keys()
        self.camera = self._build_camera()
        self.sun = self._build_sun()
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
        edit = [data.edit_bones.new(f"b{i:04d}") for i in range(len(model.bones))]
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
            if bone not in groups:
                groups[bone] = self.mesh_obj.vertex_groups.new(name=f"b{bone:04d}")
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
        points = _to_blender(self.model.vertices.positions[self.face_indices], self.settings.mmd_scale)
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

    def _build_sun(self):
        data = bpy.data.lights.new("sun", "SUN")
        data.angle = 0.0  # a hard sun: no soft-shadow noise at low sample counts
        sun = bpy.data.objects.new("sun", data)
        sun.rotation_euler = (math.pi / 2, 0.0, 0.0)  # shines along +y, onto the face
        self.scene.collection.objects.link(sun)
        return sun

    def _setup_render(self) -> None:
        s, r = self.settings, self.scene.render
        ENGINES[s.engine](self.scene, s)
        r.resolution_x = r.resolution_y = s.resolution
        r.resolution_percentage = 100
        r.film_transparent = True
        r.threads_mode = "FIXED" if s.threads else "AUTO"
        if s.threads:
            r.threads = s.threads
        r.image_settings.file_format = "PNG"
        r.image_settings.color_mode = "RGBA"
        r.image_settings.color_depth = "8"
        r.filepath = os.path.join(self._tmp.name, "frame.png")
        self.scene.view_settings.view_transform = "Standard"
        self.scene.view_settings.look = "None"
        r.line_thickness_mode = "ABSOLUTE"
        r.line_thickness = 1.2 * s.resolution / 256
        lines = bpy.data.linestyles.new("lines")  # an empty file has a line set but no line style
        lines.color = (0.05, 0.05, 0.08)
        for lineset in bpy.context.view_layer.freestyle_settings.linesets:
            lineset.linestyle = lines

    # -- materials ----------------------------------------------------------------
    def _material(self, index: int, style_name: str):
        pmx = self.model.materials[index]
        mat = bpy.data.materials.new(f"{style_name}-{index}")
        tree = mat.node_tree
        tree.nodes.clear()
        out = tree.nodes.new("ShaderNodeOutputMaterial")
        mat.diffuse_color = pmx.diffuse  # Workbench MATERIAL colour and the fallback
        image = self._images[pmx.texture] if 0 <= pmx.texture < len(self._images) else None
        mat[MATERIAL_INDEX_PROP] = index  # what material morphs find it by (morph_apply.py)
        alpha = tree.nodes.new("ShaderNodeMath")
        alpha.operation = "MULTIPLY"
        tree.links.new(morph_input(tree, "alpha", pmx.diffuse[3]), alpha.inputs[1])
        if image is not None:
            tex = tree.nodes.new("ShaderNodeTexImage")
            tex.image = image
            tree.nodes.active = tex  # what Workbench's TEXTURE colour uses
            color = tex.outputs["Color"]
            tree.links.new(tex.outputs["Alpha"], alpha.inputs[0])
        else:
            rgb = tree.nodes.new("ShaderNodeRGB")
            rgb.outputs[0].default_value = (*pmx.diffuse[:3], 1.0)
            color = rgb.outputs[0]
            alpha.inputs[0].default_value = 1.0
        shader = get_style(style_name).build(tree, color)
        mix = tree.nodes.new("ShaderNodeMixShader")
        tree.links.new(alpha.outputs[0], mix.inputs["Fac"])
        tree.links.new(tree.nodes.new("ShaderNodeBsdfTransparent").outputs[0], mix.inputs[1])
        tree.links.new(shader, mix.inputs[2])
        tree.links.new(mix.outputs[0], out.inputs["Surface"])
        mat.use_backface_culling = not pmx.flags & 0x01
        return mat

    def set_style(self, name: str) -> None:
        """Switch every material to a shader style (materials are built once per style)."""
        look = get_style(name)
        if name not in self._materials:
            self._materials[name] = [self._material(i, name) for i in range(len(self.model.materials))]
        for slot, mat in enumerate(self._materials[name]):
            self.mesh_obj.data.materials[slot] = mat
        apply_workbench(self.scene, look.workbench)
        # Freestyle under Workbench costs seconds per frame; there the outline draws the lines
        self.scene.render.use_freestyle = look.freestyle and self.settings.engine != "workbench"
        self.style = name

    # -- posing -------------------------------------------------------------------
    def pose(self, morphs: Mapping[int, float], yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0,
             light_intensity: float = 0.6, style: str | None = None) -> None:
        """Set source morph weights (by morph index; others go to 0), head angles, light and style."""
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
        self.sun.data.energy = light_intensity * self.settings.light_scale
        if style is not None and style != self.style:
            self.set_style(style)
        apply_surface_morphs(self.model, self.mesh_obj, weights)  # material and UV morphs (morph_apply.py)
        bpy.context.view_layer.update()

    def _apply_bone_pose(self, rotations: Mapping[int, Quaternion], moves: Mapping[int, Vector]) -> None:
        """World-axis rotations / moves about each bone's head, written in the bone's rest frame."""
        bones = self.arm_obj.pose.bones
        for i, pose_bone in enumerate(bones):
            rest = pose_bone.bone.matrix_local.to_3x3()
            local = rest.inverted() @ rotations.get(i, Quaternion()).to_matrix() @ rest
            pose_bone.rotation_quaternion = local.to_quaternion()
            pose_bone.location = rest.inverted() @ moves.get(i, Vector())

    # -- outputs ------------------------------------------------------------------
    def face_bbox(self) -> list[float]:
        """[x0, y0, x1, y1] in image pixels of the posed face vertices (y down)."""
        return self.bbox_of(self.face_indices)

    def bbox_of(self, indices: np.ndarray) -> list[float]:
        """Image-pixel box of some model vertices in the current pose (armature and shape keys applied)."""
        depsgraph = bpy.context.evaluated_depsgraph_get()
        evaluated = self.mesh_obj.evaluated_get(depsgraph)
        mesh = evaluated.to_mesh()
        try:
            co = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
            mesh.vertices.foreach_get("co", co)
        finally:
            evaluated.to_mesh_clear()
        points = co.reshape(-1, 3)[np.asarray(indices)]
        size = self.settings.resolution
        projected = np.array([world_to_camera_view(self.scene, self.camera, Vector(p))[:2] for p in points])
        x, y = projected[:, 0] * size, (1.0 - projected[:, 1]) * size
        return [float(x.min()), float(y.min()), float(x.max()), float(y.max())]

    def render(self) -> bytes:
        """Render the current pose; PNG bytes (RGBA, transparent background)."""
        bpy.ops.render.render(write_still=True)
        return Path(self.scene.render.filepath).read_bytes()

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
            images.append(RenderedImage(sample, scene.render(), scene.face_bbox()))
        return ModelRender(model.info.name, dict(targets), warnings + scene.warnings, images, scene.missing_textures)
    finally:
        scene.close()


def _rgba(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def inspect_model(job: InspectJob) -> ModelInspection:
    """Map the model's morphs by name, then render neutral vs each mapped morph at weight 1."""
    model = read_model(job.path)
    cfg = job.inspection
    scene = ModelScene(model, Path(job.path).parent, cfg.settings)
    try:
        scene.pose({}, style=cfg.style)
        neutral, bbox = _rgba(scene.render()), scene.face_bbox()
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
