"""Head-yaw estimates that do not read the pose label: landmarks projected from the posed mesh, MediaPipe.

Shared by the render tests of the synthetic characters (test_render_scene.py)
and of the real MMD models (test_real_mmd.py).
"""

from __future__ import annotations

import unicodedata

import numpy as np

EYE_BONES = {"left": "左目", "right": "右目"}


def landmarks(scene) -> dict[str, np.ndarray]:
    """Vertex indices of the nose (the face's front-most vertex) and of each iris (vertices on an eye bone)."""
    model = scene.model
    v = model.vertices
    names = [unicodedata.normalize("NFKC", b.name) for b in model.bones]
    marks = {"nose": np.array([scene.face_indices[np.argmin(v.positions[scene.face_indices, 2])]])}
    for side, bone in EYE_BONES.items():
        on_bone = np.where(v.bone_indices == names.index(bone), v.bone_weights, 0.0).sum(axis=1) >= 0.5
        marks[side] = np.flatnonzero(on_bone & (v.normals[:, 2] < 0))
        assert len(marks[side]) >= 6, f"no iris on {bone}"
    return marks


def projected_yaw(scene, marks: dict[str, np.ndarray]) -> float:
    """Nose offset from the eyes' midpoint along the eye line, in pixels: > 0 when the face turns image-right.

    Along the eye line (from the character's right eye to its left, image
    left to right), so roll, which tilts the whole face, does not count as yaw.
    """
    posed = scene.posed_positions()
    nose, left, right = (scene.project(posed[marks[k]]).mean(axis=0) for k in ("nose", "left", "right"))
    line = (left - right) / np.linalg.norm(left - right)
    return float(np.dot(nose - (left + right) / 2, line))


def mediapipe_yaw(detector, rgba: np.ndarray) -> float | None:
    """The same measure from MediaPipe's eye and nose key points on the render (None: no face found)."""
    alpha = rgba[..., 3:] / 255.0
    rgb = (rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    found = detector.process(rgb).detections
    if not found:
        return None
    points = found[0].location_data.relative_keypoints  # 0: the subject's right eye, 1: left eye, 2: nose tip
    right, left, nose = (np.array([points[i].x, points[i].y]) * rgba.shape[1::-1] for i in range(3))
    line = (left - right) / np.linalg.norm(left - right)
    return float(np.dot(nose - (left + right) / 2, line))


def rotated_samples(scene, n: int, seed: int = 0, min_yaw: float = 8.0):
    """Rotated-partition samples of the scene's model (its mapped morphs applied) with |yaw| >= min_yaw."""
    from factory.render.morphs import YAW, available_targets, map_morphs
    from factory.render.sampling import SamplingConfig, sample_poses

    targets = available_targets(map_morphs(scene.model.morphs))
    config = SamplingConfig(run_seed=seed, images_per_model=4 * n, frontal_fraction=0.0)
    samples = [s for s in sample_poses("yaw-check", targets, config) if abs(s.pose[YAW]) >= min_yaw]
    return [({targets[t]: w for t, w in s.morphs.items()}, *s.pose[YAW:], s) for s in samples[:n]]


def neck_subtree(model, neck: int) -> set[int]:
    """The neck bone and every bone below it (by PMX parent links; cycles cut)."""
    below, grew = {neck}, True
    while grew:
        grew = False
        for i, bone in enumerate(model.bones):
            if i not in below and bone.parent in below:
                below.add(i)
                grew = True
    return below


def rigid_outside(scene) -> np.ndarray:
    """Vertices whose whole skin weight lies on bones outside the neck's subtree: a head turn must not move them."""
    v = scene.model.vertices
    moving = np.isin(v.bone_indices, list(neck_subtree(scene.model, scene.neck)))
    return np.flatnonzero(~np.any(moving & (v.bone_weights > 0), axis=1))


def yaw_sign_agreement(scene, n: int) -> tuple[int, int]:
    """(rotated samples whose projected nose/eye yaw has the label's sign, samples posed)."""
    marks = landmarks(scene)
    samples = rotated_samples(scene, n)
    agree = 0
    for morphs, yaw, pitch, roll, _ in samples:
        scene.pose(morphs, yaw, pitch, roll)
        agree += int(np.sign(projected_yaw(scene, marks)) == np.sign(yaw))
    return agree, len(samples)
