"""A ctypes binding to nvxs, the C library inside the `animeface` package.

Why not `animeface.detect`: its C extension reads Pillow's internal image
struct, whose layout changed in recent Pillow releases; with the Pillow this
project installs (13.x) it returns no face for every image, silently
(measured: 0 faces on every frame, in microseconds, even for 1280x960
images). This binding calls the same library (libnvxs, shipped in
`animeface.libs/`) on a numpy frame, with the detector settings the
extension uses (step 4, scale factor 1.095, minimum window 42.592 px).
"""

from __future__ import annotations

import ctypes
import glob
import os
from dataclasses import dataclass

import numpy as np

_STEP, _SCALE_FACTOR, _MIN_WINDOW = 4.0, 1.095, 42.592  # python-animeface's values
_MAX_FACES = 256


class _Matrix(ctypes.Structure):
    _fields_ = [
        ("list", ctypes.c_int),
        ("list_step", ctypes.c_uint),
        ("n", ctypes.c_int),
        ("m", ctypes.c_int),
        ("rows", ctypes.c_int),
        ("cols", ctypes.c_int),
        ("step", ctypes.c_int),
        ("alias", ctypes.c_int),
        ("v", ctypes.POINTER(ctypes.c_float)),
    ]


class _Rect(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("width", ctypes.c_int), ("height", ctypes.c_int)]


class _Position(ctypes.Structure):
    _fields_ = [("likelihood", ctypes.c_float)] + [
        (name, _Rect) for name in ("face", "left_eye", "right_eye", "nose", "mouth", "chin")
    ]


_MatrixP = ctypes.POINTER(_Matrix)


@dataclass(frozen=True)
class NvxsFace:
    """One face: likelihood and boxes (x, y, width, height) in image pixels."""

    likelihood: float
    face: tuple[int, int, int, int]
    left_eye: tuple[int, int, int, int]  # the character's left eye (image right)
    right_eye: tuple[int, int, int, int]
    mouth: tuple[int, int, int, int]


def _load() -> ctypes.CDLL:
    import animeface  # only to find the bundled library

    found = glob.glob(os.path.join(os.path.dirname(animeface.__file__) + ".libs", "libnvxs*"))
    if not found:
        raise ImportError("animeface is installed without its libnvxs library")
    lib = ctypes.CDLL(found[0])
    lib.nv_matrix3d_alloc.restype = _MatrixP
    lib.nv_matrix3d_alloc.argtypes = [ctypes.c_int] * 3
    lib.nv_matrix_zero.argtypes = [_MatrixP]
    lib.nv_matrix_free.argtypes = [ctypes.POINTER(_MatrixP)]
    lib.nv_gray.argtypes = [_MatrixP, _MatrixP]
    lib.nv_gaussian5x5.argtypes = [_MatrixP, ctypes.c_int, _MatrixP, ctypes.c_int]
    lib.nv_laplacian1.argtypes = [_MatrixP, _MatrixP, ctypes.c_float]
    lib.nv_integral.argtypes = [_MatrixP, _MatrixP, ctypes.c_int]
    vp = ctypes.c_void_p
    lib.nv_face_detect.argtypes = [
        ctypes.POINTER(_Position), ctypes.c_int, _MatrixP, _MatrixP, ctypes.POINTER(_Rect),
        vp, vp, vp, ctypes.c_int, vp, ctypes.c_float, ctypes.c_float, ctypes.c_float,
    ]  # fmt: skip
    return lib


class Nvxs:
    """The nvxs anime face detector on RGB uint8 frames."""

    def __init__(self) -> None:
        self._lib = _load()
        self._mlp = {
            name: ctypes.c_void_p(ctypes.addressof(ctypes.c_char.in_dll(self._lib, f"nv_face_mlp_{name}")))
            for name in ("dir", "face_00", "face_01", "face_02", "parts")
        }

    def _alloc(self, n: int, rows: int, cols: int) -> _MatrixP:
        mat = self._lib.nv_matrix3d_alloc(n, rows, cols)
        self._lib.nv_matrix_zero(mat)
        return mat

    def detect(self, frame: np.ndarray) -> list[NvxsFace]:
        """Faces in one RGB uint8 frame."""
        h, w = frame.shape[:2]
        lib = self._lib
        bgr, gray, smooth, edge = (self._alloc(n, h, w) for n in (3, 1, 1, 1))
        gray_sum, edge_sum = self._alloc(1, h + 1, w + 1), self._alloc(1, h + 1, w + 1)
        try:
            m = bgr.contents
            pixels = np.ctypeslib.as_array(m.v, shape=(m.rows * m.cols, m.step))
            pixels[:, :3] = frame[..., ::-1].reshape(-1, 3)
            lib.nv_gray(gray, bgr)
            lib.nv_gaussian5x5(smooth, 0, gray, 0)
            lib.nv_laplacian1(edge, smooth, 4.0)
            lib.nv_integral(gray_sum, gray, 0)
            lib.nv_integral(edge_sum, edge, 0)
            found = (_Position * _MAX_FACES)()
            bagging = (ctypes.c_void_p * 3)(self._mlp["face_01"], self._mlp["face_02"], None)
            count = lib.nv_face_detect(
                found, _MAX_FACES, gray_sum, edge_sum, ctypes.byref(_Rect(0, 0, w, h)),
                self._mlp["dir"], self._mlp["face_00"], bagging, 2, self._mlp["parts"],
                _STEP, _SCALE_FACTOR, _MIN_WINDOW,
            )  # fmt: skip
        finally:
            for mat in (bgr, gray, smooth, edge, gray_sum, edge_sum):
                lib.nv_matrix_free(ctypes.byref(mat))
        return [_face(found[i]) for i in range(count)]


def _box(rect: _Rect) -> tuple[int, int, int, int]:
    return (rect.x, rect.y, rect.width, rect.height)


def _face(pos: _Position) -> NvxsFace:
    return NvxsFace(float(pos.likelihood), _box(pos.face), _box(pos.left_eye), _box(pos.right_eye), _box(pos.mouth))
