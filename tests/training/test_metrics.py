import numpy as np
import pytest
from rigserve.training.metrics import mpjpe_mm, pa_mpjpe_mm, procrustes_align, top1


def test_mpjpe_is_mean_euclidean_error_in_millimetres():
    gt = np.zeros((2, 17, 3))
    pred = gt.copy()
    pred[0, :, 0] = 0.03  # 30 mm off along x for every joint of frame 0
    pred[1, :, :] = [0.0, 0.03, 0.04]  # 50 mm for frame 1
    assert mpjpe_mm(pred, gt) == pytest.approx(40.0)


def test_pa_mpjpe_removes_rotation_translation_and_scale():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(3, 17, 3))
    a = 0.7
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    pred = 1.3 * gt @ rot.T + np.array([0.5, -1.0, 2.0])
    assert mpjpe_mm(pred, gt) > 100
    assert pa_mpjpe_mm(pred, gt) == pytest.approx(0.0, abs=1e-6)


def test_pa_mpjpe_hand_computed_on_a_two_point_case():
    # gt: points at ±1 on x; pred: same shape but the two points collapse onto 0 in x and
    # spread ±1 in y → after rotation and scale they match exactly.
    gt = np.array([[[1.0, 0, 0], [-1.0, 0, 0]]])
    pred = np.array([[[0, 2.0, 0], [0, -2.0, 0]]])
    assert pa_mpjpe_mm(pred, gt) == pytest.approx(0.0, abs=1e-9)
    # A residual Procrustes cannot remove: gt three collinear points, pred bent in the middle.
    gt3 = np.array([[[-1.0, 0, 0], [0, 0, 0], [1.0, 0, 0]]])
    pred3 = np.array([[[-1.0, 0, 0], [0, 0.3, 0], [1.0, 0, 0]]])
    aligned = procrustes_align(pred3, gt3)
    # Centred pred (-1,-.1), (0,.2), (1,-.1); by symmetry R = I, and the optimal scale is
    # s = <p, g> / |p|^2 = 2 / 2.06, so aligned = s * centred pred (gt mean is 0).
    s = 2 / 2.06
    np.testing.assert_allclose(aligned[0], s * np.array([[-1, -0.1, 0], [0, 0.2, 0],
                                                         [1, -0.1, 0]]), atol=1e-9)
    end, mid = np.hypot(1 - s, 0.1 * s), 0.2 * s
    assert pa_mpjpe_mm(pred3, gt3) == pytest.approx(1000 * (2 * end + mid) / 3)


def test_pa_alignment_never_reflects():
    gt = np.random.default_rng(1).normal(size=(1, 17, 3))
    mirrored = gt * np.array([-1, 1, 1])
    assert pa_mpjpe_mm(mirrored, gt) > 1.0


def test_top1():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert top1(logits, np.array([1, 1, 1])) == pytest.approx(2 / 3)
