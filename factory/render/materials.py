"""MMD's material model as Blender node trees, shaded by emission only.

Every style (``factory.render.styles``) turns one PMX material into one
node tree built from the same terms, which follow MMD's own shading (the PMX
material record; MMD's default shader without self-shadow):

- base colour ``clamp(diffuse * light + ambient)``, times the texture (its
  morph tints: ``texture * texture_mul + texture_add``);
- sphere map from the view-space normal (``u = 0.5 + 0.5 n_x``,
  ``v = 0.5 + 0.5 n_y``): multiplied (mode 1), added (mode 2), or, for
  mode 3, sampled at additional UV 1 and multiplied like a second texture;
- toon: the colour times the material's toon ramp read at
  ``0.5 + 0.5 * dot(N, L)`` from the bottom (shadow) to the top (lit); a
  shared toon (toon01-10) is a ramp this module computes (`shared_toon_ramp`:
  MMD's own files cannot be shipped); no toon means a white ramp;
- specular ``specular * light * max(0, dot(N, H)) ^ power`` added last;
- alpha = diffuse alpha * texture alpha; single-sided materials drop the
  faces seen from behind (the double-sided flag, bit 0);
- edge outline (flag bit 4): an inverted hull. A second object shares the
  mesh (shape keys, skin weights and materials included), keeps only the
  edge-flagged vertices (Mask), pushes them out along the normal by
  ``edge_size * vertex edge scale * EDGE_PIXELS`` pixels at 256 px
  (Displace; skipped by the view layer, drawn by the render), and draws only its
  faces seen from behind, in the edge colour, with alpha =
  edge alpha * diffuse alpha * texture alpha: a hidden part or a transparent
  texel has no outline.

"light" is MMD's light colour, a grey level: the sample's light intensity
(MMD's default is 154/255 = 0.6). It and the light direction reach the
shaders as object attributes (``LIGHT_PROP``), so a new light costs no shader
recompile. Lighting is a dot product in the tree feeding an Emission shader:
no light is sampled and no ray bounces, so a few samples give a clean image
(anti-aliasing is all they do).

Colour maths runs in display values, as MMD does: images are read as
non-colour data and the scene's view transform is Raw, so a texel renders as
its own value. Material morphs (``factory.render.morph_apply``) drive the
named value nodes made with `morph_input`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

try:
    import bpy
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "factory.render.materials needs Blender's Python module: pip install bpy==5.0.1 (Python 3.11 only)"
    ) from exc

from factory.render.morph_apply import MATERIAL_INDEX_PROP, morph_input
from factory.sources.pmx_model import Material

LIGHT_PROP = "mmd_light"  # object property: MMD light colour (grey level, the sample's light intensity)
LIGHT_DIR_PROP = "mmd_light_dir"  # object property: unit vector toward the light, world axes
EDGE_PROP = "mmd_edge"  # object property: 1 on the outline hull object
EDGE_GROUP = "mmd_edge"  # vertex group: edge-flagged vertices, weight = relative edge width
UV1_LAYER = "mmd_uv1"  # additional UV 1, made when a sub-texture sphere (mode 3) needs it
DOUBLE_SIDED, EDGE_FLAG = 0x01, 0x10
EDGE_PIXELS = 2.0  # outline width in pixels (at 256 px) per unit of PMX edge size
SPHERE_MUL, SPHERE_ADD, SPHERE_SUB = 1, 2, 3
MMD_LIGHT = 154 / 255  # MMD's default light colour
# toward the light, world axes: from the camera side (-y), 30 degrees up and 20 to the image's right
_UP, _RIGHT = np.radians(30.0), np.radians(20.0)
LIGHT_DIRECTION = (float(np.sin(_RIGHT) * np.cos(_UP)), float(-np.cos(_RIGHT) * np.cos(_UP)), float(np.sin(_UP)))

# toon01..toon10 stand-ins: (shadow grey level, soft width of the step in dot(N, L) units)
_SHARED_TOONS = ((0.80, 0.08), (0.90, 0.08), (0.70, 0.08), (0.85, 0.30), (0.88, 0.15),
                 (0.75, 0.15), (0.82, 0.40), (0.92, 0.04), (0.78, 0.04), (0.95, 0.25))


def shared_toon_ramp(index: int, size: int = 64) -> np.ndarray:
    """(size, 4) RGBA rows, bottom (unlit) to top (lit), standing in for MMD's toon{index+1:02d}.

    A two-tone step at dot(N, L) = 0 from a grey shadow to white, smoothed
    over a small width; computed here because MMD's shared toon files may not
    be redistributed. Index outside 0..9: white (no toon).
    """
    rows = np.ones((size, 4))
    if 0 <= index < len(_SHARED_TOONS):
        shadow, width = _SHARED_TOONS[index]
        n_dot_l = np.linspace(-1.0, 1.0, size)
        lit = np.clip(0.5 + n_dot_l / width, 0.0, 1.0)
        rows[:, :3] = (shadow + (1.0 - shadow) * lit)[:, None]
    return rows


def ramp_image(name: str, rows: np.ndarray):
    """A 4-pixel-wide bpy image of ramp rows (bottom to top), read as data, clamped at the ends."""
    image = bpy.data.images.new(name, width=4, height=len(rows), alpha=True)
    image.colorspace_settings.name = "Non-Color"
    image.pixels.foreach_set(np.repeat(rows, 4, axis=0).astype(np.float32).ravel())
    image.pack()  # generated pixels live in the file, not on disk
    return image


# -- a small node-tree vocabulary ------------------------------------------------------
class Graph:
    """Node-building helpers bound to one material's node tree."""

    def __init__(self, tree):
        self.tree = tree

    def link(self, value, socket) -> None:
        """Feed `socket` from an output socket, or set its default to a constant."""
        if isinstance(value, bpy.types.NodeSocket):
            self.tree.links.new(value, socket)
        else:
            socket.default_value = value

    def node(self, kind: str, *inputs, **props):
        node = self.tree.nodes.new(kind)
        for name, value in props.items():
            setattr(node, name, value)
        for socket, value in zip((s for s in node.inputs if s.enabled), inputs):
            if value is not None:
                self.link(value, socket)
        return node

    def math(self, op: str, a, b=0.0, c=None):
        return self.node("ShaderNodeMath", a, b, c, operation=op).outputs[0]

    def vec(self, op: str, a, b=(0.0, 0.0, 0.0), c=None):
        node = self.node("ShaderNodeVectorMath", a, b, c, operation=op)
        return node.outputs[1 if op in ("DOT_PRODUCT", "LENGTH", "DISTANCE") else 0]

    def scale(self, v, s):
        node = self.node("ShaderNodeVectorMath", v, operation="SCALE")
        self.link(s, node.inputs["Scale"])
        return node.outputs[0]

    def lerp(self, a, b, t):
        """a + (b - a) * t for colours/vectors and a scalar t."""
        return self.vec("ADD", a, self.scale(self.vec("SUBTRACT", b, a), t))

    def clamp01(self, v):
        return self.vec("MINIMUM", self.vec("MAXIMUM", v, (0.0, 0.0, 0.0)), (1.0, 1.0, 1.0))

    def attribute(self, name: str, output: str = "Fac"):
        return self.node("ShaderNodeAttribute", attribute_type="OBJECT", attribute_name=name).outputs[output]

    def image(self, image, vector=None, extension: str = "REPEAT"):
        """(colour, alpha) sockets of an image texture."""
        node = self.node("ShaderNodeTexImage", vector, extension=extension)
        node.image = image
        return node.outputs["Color"], node.outputs["Alpha"]

    def geometry(self, output: str):
        if not hasattr(self, "_geometry"):
            self._geometry = self.node("ShaderNodeNewGeometry")
        return self._geometry.outputs[output]


@dataclass(frozen=True)
class MaterialImages:
    """The images one PMX material reads (None where it has none or it is unusable)."""

    texture: object = None
    sphere: object = None
    toon: object = None


class Terms:
    """The shading terms of one PMX material, built into its tree on first use."""

    def __init__(self, graph: Graph, pmx: Material, images: MaterialImages, sphere_uv: bool):
        self.g, self.pmx, self.images, self._sphere_uv = graph, pmx, images, sphere_uv
        self._cache: dict[str, object] = {}

    def _once(self, key: str, make: Callable[[], object]):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    # material values (named nodes that material morphs drive)
    def value(self, name: str):
        """The socket of a PMX material value (or a tint) that material morphs write."""
        pmx = self.pmx
        values = {"diffuse": pmx.diffuse, "alpha": pmx.diffuse[3], "ambient": pmx.ambient,
                  "specular": pmx.specular, "specular_strength": pmx.specular_strength,
                  "edge_color": pmx.edge_color}
        if name not in values:  # a tint: multiply by 1, add 0 until a morph says otherwise
            values[name] = (1.0, 1.0, 1.0, 1.0) if name.endswith("_mul") else (0.0, 0.0, 0.0, 0.0)
        return self._once(f"v:{name}", lambda: morph_input(self.g.tree, name, values[name]))

    def _tinted(self, tint: str, color):
        """An image colour times its morph tint (rgb * mul + add; the tints' alpha is not applied)."""
        return self.g.vec("MULTIPLY_ADD", color, self.value(f"{tint}_mul"), self.value(f"{tint}_add"))

    # light
    @property
    def light(self):
        return self._once("light", lambda: self.g.attribute(LIGHT_PROP))

    @property
    def light_dir(self):
        return self._once("light_dir", lambda: self.g.attribute(LIGHT_DIR_PROP, "Vector"))

    @property
    def n_dot_l(self):
        return self._once("ndl", lambda: self.g.vec("DOT_PRODUCT", self.g.geometry("Normal"), self.light_dir))

    # colour terms
    @property
    def texture(self):
        """(rgb, alpha) of the base texture with its tints; white and opaque without one."""
        def make():
            if self.images.texture is None:
                return (1.0, 1.0, 1.0), 1.0
            color, alpha = self.g.image(self.images.texture)
            return self._tinted("texture", color), alpha
        return self._once("texture", make)

    @property
    def alpha(self):
        """diffuse alpha * texture alpha."""
        return self._once("alpha", lambda: self.g.math("MULTIPLY", self.value("alpha"), self.texture[1]))

    def base(self, light=None):
        """clamp(diffuse * light + ambient): MMD's vertex colour (at the sample's light by default)."""
        g = self.g
        light = self.light if light is None else light
        return g.clamp01(g.vec("ADD", g.scale(self.value("diffuse"), light), self.value("ambient")))

    @property
    def mmd_color(self):
        """base * texture: MMD's colour before sphere, toon and specular."""
        return self._once("mmd", lambda: self.g.vec("MULTIPLY", self.base(), self.texture[0]))

    @property
    def albedo(self):
        """The colour MMD shows at its default light (154/255), unlit: what the other styles shade."""
        return self._once("albedo", lambda: self.g.vec("MULTIPLY", self.base(MMD_LIGHT), self.texture[0]))

    def sphere(self, color):
        """`color` with the sphere map applied (unchanged without one)."""
        g, mode, image = self.g, self.pmx.sphere_mode, self.images.sphere
        if image is None or mode not in (SPHERE_MUL, SPHERE_ADD, SPHERE_SUB) or (mode == SPHERE_SUB
                                                                               and not self._sphere_uv):
            return color
        if mode == SPHERE_SUB:
            uv = g.node("ShaderNodeUVMap", uv_map=UV1_LAYER).outputs[0]
        else:
            view = g.node("ShaderNodeVectorTransform", g.geometry("Normal"), vector_type="NORMAL",
                          convert_from="WORLD", convert_to="CAMERA").outputs[0]
            uv = g.vec("MULTIPLY_ADD", view, (0.5, 0.5, 0.0), (0.5, 0.5, 0.0))
        rgb = self._tinted("sphere", g.image(image, uv, extension="EXTEND")[0])
        return g.vec("ADD" if mode == SPHERE_ADD else "MULTIPLY", color, rgb)

    def toon(self, color):
        """`color` times the toon ramp at dot(N, L) (unchanged without a toon)."""
        g, image = self.g, self.images.toon
        if image is None:
            return color
        v = g.math("MULTIPLY_ADD", self.n_dot_l, 0.5, 0.5)
        rgb = self._tinted("toon", g.image(image, g.node("ShaderNodeCombineXYZ", 0.5, v).outputs[0],
                                           extension="EXTEND")[0])
        return g.vec("MULTIPLY", color, rgb)

    def specular(self, color):
        """`color` + specular * light * max(0, N.H)^power (unchanged for a black specular)."""
        if not any(self.pmx.specular) and self.pmx.specular_strength <= 0:
            return color
        g = self.g
        half = g.vec("NORMALIZE", g.vec("ADD", g.geometry("Incoming"), self.light_dir))
        n_dot_h = g.math("MAXIMUM", g.vec("DOT_PRODUCT", g.geometry("Normal"), half), 0.0)
        power = g.math("MAXIMUM", self.value("specular_strength"), 1e-3)
        strength = g.math("MULTIPLY", g.math("POWER", n_dot_h, power), self.light)
        return g.vec("ADD", color, g.scale(self.value("specular"), strength))


# -- material assembly ---------------------------------------------------------------
ColorBuilder = Callable[[Terms], object]  # terms -> display-value rgb socket


def build_material(name: str, index: int, pmx: Material, images: MaterialImages, color: ColorBuilder,
                   edges: bool, sphere_uv: bool = False):
    """One Blender material: the style's colour on the surface, the edge colour on the hull object."""
    mat = bpy.data.materials.new(name)
    mat[MATERIAL_INDEX_PROP] = index
    mat.diffuse_color = pmx.diffuse  # what Workbench's MATERIAL colour shows
    mat.use_backface_culling = False  # culling is in the tree: the hull draws exactly the back faces
    tree = mat.node_tree
    tree.nodes.clear()
    g = Graph(tree)
    terms = Terms(g, pmx, images, sphere_uv)
    rgb, alpha = color(terms), terms.alpha
    if images.texture is not None:  # what Workbench's TEXTURE colour shows
        tree.nodes.active = next(n for n in tree.nodes if n.bl_idname == "ShaderNodeTexImage"
                                 and n.image == images.texture)
    back = g.geometry("Backfacing")
    if not pmx.flags & DOUBLE_SIDED:
        alpha = g.math("MULTIPLY", alpha, g.math("SUBTRACT", 1.0, back))
    if edges and pmx.flags & EDGE_FLAG:
        on_hull = g.attribute(EDGE_PROP)
        edge_alpha = g.math("MULTIPLY", g.math("MULTIPLY", terms.alpha, pmx.edge_color[3]), back)
        rgb = g.lerp(rgb, terms.value("edge_color"), on_hull)
        alpha = g.math("ADD", g.math("MULTIPLY", alpha, g.math("SUBTRACT", 1.0, on_hull)),
                       g.math("MULTIPLY", edge_alpha, on_hull))
    emission = g.node("ShaderNodeEmission", rgb, 1.0)
    mix = g.node("ShaderNodeMixShader", g.math("MINIMUM", alpha, 1.0),
                 g.node("ShaderNodeBsdfTransparent").outputs[0], emission.outputs[0])
    g.node("ShaderNodeOutputMaterial", mix.outputs[0])
    return mat


def material_images(pmx: Material, images: list, shared_toons: Callable[[int], object]) -> MaterialImages:
    """The texture, sphere and toon images of one PMX material."""
    def get(i: int):
        return images[i] if 0 <= i < len(images) else None
    toon = shared_toons(pmx.toon) if pmx.toon_shared else get(pmx.toon)
    return MaterialImages(get(pmx.texture), get(pmx.sphere_texture) if pmx.sphere_mode else None, toon)


# -- scene-level parts -----------------------------------------------------------------
def set_light(objects, intensity: float, direction=LIGHT_DIRECTION) -> None:
    """Write the light colour (grey level) and direction the shaders read onto each object."""
    for obj in objects:
        obj[LIGHT_PROP] = float(intensity)
        obj[LIGHT_DIR_PROP] = tuple(float(c) for c in direction)


def edge_weights(model, pixel_world: float) -> tuple[np.ndarray, float]:
    """Per-vertex hull width (relative, 0..1) and the width in metres that weight 1 stands for.

    A vertex's width is its material's edge size times its own edge scale, in
    pixels (`pixel_world` metres per pixel); vertices of materials without the
    edge flag get 0 and are masked away.
    """
    n = len(model.vertices)
    width = np.zeros(n)
    start = 0
    for mat in model.materials:
        faces = model.faces[start // 3: (start + mat.index_count) // 3]
        start += mat.index_count
        if mat.flags & EDGE_FLAG and mat.edge_size > 0:
            used = np.unique(faces.ravel())
            used = used[(used >= 0) & (used < n)]
            width[used] = np.maximum(width[used], mat.edge_size)
    width *= np.clip(model.vertices.edge_scales, 0.0, None)
    top = float(width.max()) if n else 0.0
    return (width / top if top > 0 else width), top * pixel_world


def build_outline(scene, mesh_obj, arm_obj, model, pixel_world: float):
    """The inverted-hull outline object (None when no material sets the edge flag)."""
    weights, strength = edge_weights(model, pixel_world)
    if strength <= 0:
        return None
    group = mesh_obj.vertex_groups.new(name=EDGE_GROUP)
    keep = np.flatnonzero(weights > 0)
    order = np.argsort(weights[keep])
    keep, levels = keep[order], np.round(weights[keep][order], 3)
    starts = np.flatnonzero(np.r_[True, np.diff(levels) != 0])
    for a, b in zip(starts, np.r_[starts[1:], len(keep)]):  # few add() calls: grouped by weight
        group.add(keep[a:b].tolist(), float(max(levels[a], 1e-3)), "REPLACE")
    hull = bpy.data.objects.new("outline", mesh_obj.data)  # shares mesh, shape keys, groups, materials
    scene.collection.objects.link(hull)
    hull[EDGE_PROP] = 1.0
    hull.hide_viewport = True  # the render evaluates it; the view layer (face boxes) need not, pose after pose
    armature = hull.modifiers.new("Armature", "ARMATURE")
    armature.object = arm_obj
    mask = hull.modifiers.new("Mask", "MASK")
    mask.vertex_group, mask.threshold = EDGE_GROUP, 0.0
    push = hull.modifiers.new("Displace", "DISPLACE")
    push.direction, push.mid_level, push.strength = "NORMAL", 0.0, strength
    push.vertex_group = EDGE_GROUP
    return hull


def add_uv1(mesh, model) -> bool:
    """Additional UV 1 as a UV layer (for sub-texture spheres); False when the model has none."""
    extra = model.vertices.additional_uvs
    if extra.ndim != 3 or extra.shape[1] < 1:
        return False
    if UV1_LAYER not in mesh.uv_layers:
        loops = np.empty(len(mesh.loops), dtype=np.int32)
        mesh.loops.foreach_get("vertex_index", loops)
        uv = extra[loops, 0, :2].astype(np.float64)
        uv[:, 1] = 1.0 - uv[:, 1]
        mesh.uv_layers.new(name=UV1_LAYER).data.foreach_set("uv", uv.astype(np.float32).ravel())
    return True
