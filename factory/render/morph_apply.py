"""PMX material and UV morphs: what the sampled weights do to materials and UVs.

Vertex morphs become shape keys and bone morphs pose bones (scene.py); the two
kinds here have no Blender counterpart, so they are evaluated in numpy and
written into the scene on every pose:

- **material morphs** (`material_values`): per material offset (index -1 =
  every material), *multiply* scales a value by ``1 + (offset - 1) * w`` and
  *add* adds ``offset * w``, in morph order, as MMD does. The values are the
  PMX material's own: diffuse (rgba; alpha 0 hides a part, so a morph that
  adds alpha shows it), specular, specular strength, ambient, edge colour and
  size, and the texture / sphere / toon tints, which start as ``mul = 1`` and
  ``add = 0``: multiply offsets scale ``*_mul``, add offsets add to ``*_add``.
- **UV morphs** (`uv_offsets`): per-vertex (du, dv) offsets on UV layer 0,
  scaled by the weight and summed. Additional-UV morphs (UV1-UV4) are not
  applied: no material reads additional UVs.

The scene side is a small contract with the material builders: a material's
node tree holds one Value or RGB node per driven value, named
``MORPH_NODE_PREFIX + value name`` (``mmd_diffuse``, ``mmd_alpha``, ...),
made with `morph_input`; `apply_surface_morphs` writes every such node it
finds (and ``Material.diffuse_color``, which Workbench reads). A material
says which PMX material it draws with the custom property
``MATERIAL_INDEX_PROP``; without it, mesh slot i is PMX material i.
This module needs no ``import bpy``: it only calls methods of the objects
it is given.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from factory.sources.pmx_model import MorphKind, PmxModel

MORPH_NODE_PREFIX = "mmd_"
MATERIAL_INDEX_PROP = "mmd_material"  # custom property: the PMX material a Blender material draws
MULTIPLY, ADD = 0, 1  # material morph operations
_MORPHED = "mmd_morphed"  # custom property: a morph changed this material / mesh since its PMX values

# value name -> (offset field, operations that change it); tints split by operation
_FIELDS: dict[str, tuple[str, tuple[int, ...]]] = {
    "diffuse": ("diffuse", (MULTIPLY, ADD)),
    "specular": ("specular", (MULTIPLY, ADD)),
    "specular_strength": ("specularity", (MULTIPLY, ADD)),
    "ambient": ("ambient", (MULTIPLY, ADD)),
    "edge_color": ("edge_color", (MULTIPLY, ADD)),
    "edge_size": ("edge_size", (MULTIPLY, ADD)),
    **{f"{tint}_{op}": (f"{tint}_tint", ((MULTIPLY,) if op == "mul" else (ADD,)))
       for tint in ("texture", "sphere", "toon") for op in ("mul", "add")},
}


def base_material_values(model: PmxModel) -> dict[str, np.ndarray]:
    """Each value of every PMX material before any morph: name -> (M, k) float64 array."""
    mats = model.materials
    n = len(mats)
    values = {
        "diffuse": np.array([m.diffuse for m in mats], np.float64).reshape(n, 4),
        "specular": np.array([m.specular for m in mats], np.float64).reshape(n, 3),
        "specular_strength": np.array([[m.specular_strength] for m in mats], np.float64).reshape(n, 1),
        "ambient": np.array([m.ambient for m in mats], np.float64).reshape(n, 3),
        "edge_color": np.array([m.edge_color for m in mats], np.float64).reshape(n, 4),
        "edge_size": np.array([[m.edge_size] for m in mats], np.float64).reshape(n, 1),
    }
    for tint in ("texture", "sphere", "toon"):
        values[f"{tint}_mul"] = np.ones((n, 4))
        values[f"{tint}_add"] = np.zeros((n, 4))
    return values


def material_values(model: PmxModel, weights: Mapping[int, float]) -> dict[str, np.ndarray]:
    """Every material value after the material morphs in `weights` (morph index -> weight)."""
    values = base_material_values(model)
    n = len(model.materials)
    for index in sorted(weights):
        weight = float(weights[index])
        morph = model.morphs[index] if 0 <= index < len(model.morphs) else None
        if morph is None or morph.kind is not MorphKind.MATERIAL or weight == 0.0:
            continue
        for row in morph.offsets:
            target = int(row["index"])
            rows = slice(None) if target == -1 else target  # -1: every material
            if target >= n:
                continue
            op = int(row["operation"])
            for name, (field, ops) in _FIELDS.items():
                if op not in ops:
                    continue
                offset = np.atleast_1d(np.asarray(row[field], np.float64))
                if op == MULTIPLY:
                    values[name][rows] *= 1.0 + (offset - 1.0) * weight
                else:
                    values[name][rows] += offset * weight
    return values


def uv_offsets(model: PmxModel, weights: Mapping[int, float]) -> np.ndarray:
    """(N, 2) summed UV-layer-0 offsets of the UV morphs in `weights`, in MMD's (u, v) (v runs down)."""
    n = len(model.vertices)
    out = np.zeros((n, 2))
    for index, weight in weights.items():
        morph = model.morphs[index] if 0 <= index < len(model.morphs) else None
        if morph is None or morph.kind is not MorphKind.UV or weight == 0.0:
            continue
        rows = morph.offsets["index"]
        ok = (rows >= 0) & (rows < n)
        np.add.at(out, rows[ok], morph.offsets["offset"][ok, :2] * float(weight))
    return out


def has_surface_morphs(model: PmxModel) -> tuple[bool, bool]:
    """(any material morph, any UV morph) in the model: what `apply_surface_morphs` must keep writing."""
    kinds = {m.kind for m in model.morphs}
    return MorphKind.MATERIAL in kinds, MorphKind.UV in kinds


# -- the scene side (bpy objects passed in) ------------------------------------------
def morph_input(tree, name: str, value) -> object:
    """A node a material morph drives: an RGB node for a 3/4-vector, a Value node for a number.

    `name` is one of the value names above or ``alpha`` (diffuse alpha alone);
    returns the node's output socket, to be linked where the value is used.
    """
    value = np.atleast_1d(np.asarray(value, np.float64))
    node = tree.nodes.new("ShaderNodeValue" if value.size == 1 else "ShaderNodeRGB")
    node.name = node.label = MORPH_NODE_PREFIX + name
    node.outputs[0].default_value = _socket_value(value)
    return node.outputs[0]


def _socket_value(value: np.ndarray):
    if value.size == 1:
        return float(value[0])
    return (*(float(v) for v in value[:3]), float(value[3]) if value.size > 3 else 1.0)


def _pmx_index(slot: int, material) -> int:
    return int(material.get(MATERIAL_INDEX_PROP, slot))


def write_material_values(materials, values: Mapping[str, np.ndarray], active: bool) -> None:
    """Write morphed values into every named node (and the Workbench colour) of the given materials.

    A material is only touched while a morph is `active` or when an earlier
    call changed it (so it is set back to its PMX values once).
    """
    n = len(next(iter(values.values())))
    for slot, mat in enumerate(materials):
        index = _pmx_index(slot, mat) if mat is not None else -1
        if not 0 <= index < n or not (active or mat.get(_MORPHED)):
            continue
        mat[_MORPHED] = active
        mat.diffuse_color = tuple(float(c) for c in np.clip(values["diffuse"][index], 0.0, 1.0))
        nodes = mat.node_tree.nodes if mat.node_tree is not None else {}
        for name, array in (*values.items(), ("alpha", np.clip(values["diffuse"][:, 3:], 0.0, 1.0))):
            node = nodes.get(MORPH_NODE_PREFIX + name)
            if node is not None:
                node.outputs[0].default_value = _socket_value(array[index])


def write_uvs(mesh, model: PmxModel, offsets: np.ndarray) -> None:
    """Set UV layer 0 to the model's UVs plus `offsets` (N, 2), per loop, v flipped for Blender.

    Skipped while no offset is set and none was before (a pose without UV morphs costs nothing).
    """
    active = bool(np.any(offsets))
    if not len(mesh.uv_layers) or not (active or mesh.get(_MORPHED)):
        return
    mesh[_MORPHED] = active
    loops = np.empty(len(mesh.loops), dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", loops)
    uv = (model.vertices.uvs.astype(np.float64) + offsets)[loops]
    uv[:, 1] = 1.0 - uv[:, 1]  # MMD's v runs down the image
    mesh.uv_layers[0].data.foreach_set("uv", uv.astype(np.float32).ravel())
    mesh.update()


def apply_surface_morphs(model: PmxModel, mesh_obj, weights: Mapping[int, float]) -> None:
    """Write the material and UV morph state of `weights` into the mesh and its current materials.

    The whole state is written from the PMX values (no undo step), and only
    where a morph acts now or acted before.
    """
    materials, uvs = has_surface_morphs(model)
    if materials:
        active = any(w != 0.0 and 0 <= i < len(model.morphs) and model.morphs[i].kind is MorphKind.MATERIAL
                     for i, w in weights.items())
        write_material_values(mesh_obj.data.materials, material_values(model, weights), active)
    if uvs:
        write_uvs(mesh_obj.data, model, uv_offsets(model, weights))
