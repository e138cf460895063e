"""Alignment: the aligned face's eye line is level (truth from the drawn faces); frontal choice rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from actors.detection import make_detector
from actors.frontalization import FaceMeshLandmarker, Frontalizer, FrontalizerSettings
from factory.video.align import (
    AlignSettings,
    FaceMeasure,
    align_face,
    alignment_matrix,
    choose_faces,
    eye_roll_deg,
    nose_yaw_deg,
    transform_points,
)
from factory.video.decode import SamplingSettings, Video


def _level_error_deg(matrix: np.ndarray, eyes: np.ndarray) -> float:
    (x0, y0), (x1, y1) = transform_points(matrix, eyes)
    return abs(math.degrees(math.atan2(y1 - y0, x1 - x0)))


@pytest.fixture(scope="module", params=[False, True], ids=["mesh-detects-the-face", "mesh-on-the-detector-box"])
def models(request):
    return make_detector("mediapipe"), Frontalizer(FrontalizerSettings(mesh_from_box=request.param))


def _eye_line_deg(eyes) -> float:
    (x0, y0), (x1, y1) = sorted(tuple(map(float, e)) for e in eyes)
    return math.degrees(math.atan2(y1 - y0, x1 - x0))


@pytest.mark.parametrize("turn_deg", [-45, -30, 30, 45])
def test_the_face_mesh_on_the_detector_box_follows_a_tilted_head(talking_3d, turn_deg):
    """On a frame turned so the drawn eye line tilts 24-51 degrees, the mesh's eye line is the drawn one.

    The mesh's region turns with the detector's eye keypoints. (Measured
    2026-12-05: errors under 0.6 degrees; the mesh that detects the face
    again errs 25 degrees at the 51-degree tilt.)
    """
    import cv2

    detector, mesh = make_detector("mediapipe"), FaceMeshLandmarker(FrontalizerSettings(mesh_from_box=True))
    with Video(talking_3d.path) as decoded:
        batch = next(iter(decoded.frame_batches(SamplingSettings())))
    index, frame = int(batch.indices[0]), batch.frames[0]
    face = max(detector([frame])[0], key=lambda d: d.area)
    truth = next(f.eyes[index] for f in talking_3d.faces if face.bbox[0] < f.eyes[index, 0, 0] < face.bbox[2])
    centre = ((face.bbox[0] + face.bbox[2]) / 2, (face.bbox[1] + face.bbox[3]) / 2)
    turn = cv2.getRotationMatrix2D(centre, turn_deg, 1.0)
    turned = cv2.warpAffine(frame, turn, frame.shape[1::-1])
    drawn = _eye_line_deg(transform_points(turn, truth))
    assert abs(drawn) > 15  # the head really is tilted
    marks = mesh(turned, max(detector([turned])[0], key=lambda d: d.area))
    assert marks is not None
    assert abs(_eye_line_deg(marks.eyes) - drawn) < 3.0


def test_the_face_mesh_on_the_detector_box_puts_real_anime_eyes_inside_labelled_faces():
    """Real art (../shared/realdata/anime2d_dev): on MediaPipe's faces the mesh fits, its eyes lie in a hand-drawn face box."""
    from factory.train.real_art import load_real_art
    from tests.realdata import ANIME2D

    if not (ANIME2D / "boxes.json").is_file():
        pytest.skip(f"real anime art not found at {ANIME2D} (../shared/realdata)")
    detector, mesh = make_detector("mediapipe"), FaceMeshLandmarker(FrontalizerSettings(mesh_from_box=True))

    def in_a_box(point, boxes) -> bool:
        return any(b[0] <= point[0] <= b[2] and b[1] <= point[1] <= b[3] for b in boxes)

    faces = fitted = inside = 0
    for image in load_real_art(ANIME2D):
        for face in detector([image.rgb])[0]:
            faces += 1
            marks = mesh(image.rgb, face)
            if marks is not None:
                fitted += 1
                inside += all(in_a_box(eye, image.boxes) for eye in marks.eyes)
    # Measured 2026-12-05: MediaPipe finds 14 faces, the mesh fits 10 of them, all 10 with both eyes
    # in a labelled face (detecting the face again instead: 12 fitted, 11 inside).
    assert faces >= 10 and fitted >= faces // 2
    assert inside >= 0.9 * fitted


@pytest.mark.parametrize("name", ["talking_3d", "talking_2d"])
def test_aligned_eye_line_is_within_3_degrees_of_horizontal(name, request, models):
    video = request.getfixturevalue(name)
    detector, frontalizer = models
    with Video(video.path) as decoded:
        rows = [(i, f) for batch in decoded.frame_batches(SamplingSettings(interval_s=1.0)) for i, _, _, f in batch]
    errors, rolls = [], []
    for index, frame in rows:
        dets = detector([frame])[0]
        main = max(dets, key=lambda d: d.area)
        marks = frontalizer(frame, main, video.style)
        truth = next(f for f in video.faces if not np.isnan(f.eyes[index, 0, 0]) and
                     main.bbox[0] < f.eyes[index, 0, 0] < main.bbox[2])
        errors.append(_level_error_deg(alignment_matrix(marks.eyes, main.bbox, AlignSettings()), truth.eyes[index]))
        rolls.append(abs(truth.rolls_deg[index]))
    assert max(rolls) > 3.0  # the heads really tilt, so levelling is tested
    assert np.median(errors) < 2.0
    assert max(errors) < 3.0


def test_align_face_levels_a_drawn_eye_pair():
    img = np.zeros((200, 200, 3), np.uint8)
    eyes = ((60.0, 90.0), (140.0, 110.0))  # tilted by atan(20/80) = 14 degrees
    for x, y in eyes:
        img[int(y) - 3 : int(y) + 4, int(x) - 3 : int(x) + 4] = 255
    settings = AlignSettings(crop_size=128)
    out = align_face(img, eyes, (40.0, 50.0, 160.0, 170.0), settings)
    assert out.shape == (128, 128, 3)
    ys, xs = np.nonzero(out[..., 0] > 128)
    left, right = xs < 64, xs >= 64
    assert abs(ys[left].mean() - ys[right].mean()) < 1.0
    assert eye_roll_deg(eyes) == pytest.approx(math.degrees(math.atan2(20, 80)))


def test_nose_yaw_is_zero_when_centred_and_signed_when_not():
    eyes = ((0.0, 0.0), (10.0, 0.0))
    assert nose_yaw_deg(eyes, (5.0, 6.0)) == pytest.approx(0.0)
    assert nose_yaw_deg(eyes, (7.5, 6.0)) == pytest.approx(30.0)
    assert nose_yaw_deg(eyes, (2.5, 6.0)) == pytest.approx(-30.0)


def test_choose_faces_drops_profiles_and_half_closed_eyes_and_ranks_the_rest():
    m = [
        FaceMeasure(yaw_deg=5, pitch_deg=0, eye_openness=0.40, mouth_openness=0.0),  # good
        FaceMeasure(yaw_deg=50, pitch_deg=0, eye_openness=0.40, mouth_openness=0.0),  # profile
        FaceMeasure(yaw_deg=0, pitch_deg=0, eye_openness=0.15, mouth_openness=0.0),  # half-closed
        FaceMeasure(yaw_deg=0, pitch_deg=0, eye_openness=0.40, mouth_openness=0.0),  # best
        FaceMeasure(yaw_deg=0, pitch_deg=0, eye_openness=0.40, mouth_openness=0.4),  # talking
        None,  # no landmarks
    ]
    assert choose_faces(m, AlignSettings()) == [3, 0, 4]
    assert choose_faces(m, AlignSettings(faces_per_track=1)) == [3]
    assert choose_faces([m[1], None], AlignSettings()) == []


def test_landmarks_and_alignment_from_a_face_crop_equal_the_whole_frame(talking_3d, models):
    """Pass 1 keeps only a JPEG crop per face (factory/video/candidates.py): landmarks and aligned face as from the frame."""
    from factory.video.candidates import face_crop

    detector, frontalizer = models
    settings = AlignSettings()
    with Video(talking_3d.path) as decoded:
        frames = [f for batch in decoded.frame_batches(SamplingSettings(interval_s=2.0)) for f in batch.frames]
    compared = 0
    for frame in frames:
        dets = detector([frame])[0]
        if not dets:
            continue
        main = max(dets, key=lambda d: d.area)
        whole = frontalizer(frame, main, "3d")
        crop = face_crop(frame, main, frontalizer.settings.mesh_margin, settings.crop_margin)
        assert crop.pixels().shape[0] < frame.shape[0]  # a crop, not the frame
        local = frontalizer(crop.pixels(), crop.to_crop(main), "3d")
        found = crop.to_frame(local)
        assert found.source == whole.source
        np.testing.assert_allclose(np.array(found.eyes), np.array(whole.eyes), atol=1.0)  # px, JPEG 95
        eyes = (crop.local(found.eyes[0]), crop.local(found.eyes[1]))
        aligned = align_face(crop.pixels(), eyes, crop.to_crop(main).bbox, settings)
        reference = align_face(frame, whole.eyes, main.bbox, settings)
        assert np.abs(aligned.astype(int) - reference.astype(int)).mean() <= 3.0
        compared += 1
    assert compared >= 3
