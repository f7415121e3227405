"""The math under the robust-distillation strategies, checked against its definitions."""

from __future__ import annotations

import pytest
import torch
from rigserve.training.strategies.evidential import (
    combine_uncertainty,
    dirichlet_from_evidence,
    evidential_loss,
    pairwise_disagreement,
    prototype_evidence,
    prototype_infonce,
)
from rigserve.training.strategies.prototypes import (
    intra_class_variation,
    kmeans,
    masked_class_means,
    normalise_poses,
)
from rigserve.training.strategies.spectral import (
    frequency_split,
    log_mse,
    scale_consistency,
    scale_normalise,
)

# ---- frequency split --------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "dim", "keep"), [
    ((4, 64), -1, 0.25), ((4, 63), -1, 0.1), ((2, 8, 32), 1, 0.5), ((3, 16), -1, 1.0),
])
def test_frequency_split_reconstructs_the_feature(shape, dim, keep):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    low, high = frequency_split(x, keep=keep, dim=dim)
    assert low.shape == x.shape
    assert high.shape == x.shape
    torch.testing.assert_close(low + high, x, atol=1e-5, rtol=0)


def test_frequency_split_puts_a_slow_wave_low_and_a_fast_wave_high():
    t = torch.arange(64, dtype=torch.float32)
    slow = torch.cos(2 * torch.pi * 2 * t / 64)   # bin 2 of 33
    fast = torch.cos(2 * torch.pi * 25 * t / 64)  # bin 25 of 33
    low, high = frequency_split((slow + fast).unsqueeze(0), keep=0.25)
    torch.testing.assert_close(low[0], slow, atol=1e-4, rtol=0)
    torch.testing.assert_close(high[0], fast, atol=1e-4, rtol=0)


def test_frequency_split_keep_ratio_outside_range_is_refused():
    with pytest.raises(ValueError, match=r"keep ratio must lie in \(0, 1\], got 0.0"):
        frequency_split(torch.randn(2, 8), keep=0.0)


def test_log_mse_is_relaxed_relative_to_mse_for_large_gaps():
    a = torch.zeros(10)
    assert float(log_mse(a, a)) == 0.0
    far = torch.full((10,), 10.0)
    assert float(log_mse(a, far)) == pytest.approx(torch.log1p(torch.tensor(100.0)).item())


def test_scale_normalise_gives_zero_mean_unit_rms_and_scale_consistency_sees_moments():
    x = 5.0 + 3.0 * torch.randn(4, 32, generator=torch.Generator().manual_seed(1))
    z = scale_normalise(x)
    torch.testing.assert_close(z.mean(-1), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.pow(2).mean(-1), torch.ones(4), atol=1e-4, rtol=0)
    assert float(scale_consistency(x, x)) == 0.0
    assert float(scale_consistency(x, 2 * x)) > 1.0


# ---- prototypes -------------------------------------------------------------------------


def test_prototypes_are_masked_class_means():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(12, 5, generator=g)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 1])
    mask = torch.tensor([1, 1, 0, 1, 0, 0, 0, 1, 0, 1, 1, 1], dtype=torch.bool)
    protos, counts = masked_class_means(feats, labels, num_classes=4, mask=mask)
    for c in range(4):
        rows = feats[(labels == c) & mask]
        assert int(counts[c]) == rows.shape[0]
        expected = rows.mean(0) if rows.shape[0] else torch.zeros(5)
        torch.testing.assert_close(protos[c], expected)
    # class 2 is present in the batch but every one of its rows is masked out
    assert int(counts[2]) == 0
    assert int(counts[3]) == 0


def test_masked_class_means_rejects_labels_out_of_range():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got range \[0, 3\]"):
        masked_class_means(torch.zeros(2, 4), torch.tensor([0, 3]), num_classes=3)


def test_intra_class_variation_is_cosine_to_own_prototype():
    protos = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    feats = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, -3.0]])
    ifv = intra_class_variation(feats, torch.tensor([0, 1, 1]), protos)
    torch.testing.assert_close(ifv, torch.tensor([1.0, 2 ** -0.5, -1.0]))


def test_normalised_poses_ignore_position_and_body_size():
    g = torch.Generator().manual_seed(2)
    pose = torch.randn(1, 17, 3, generator=g)
    moved_and_scaled = 1.7 * pose + torch.tensor([3.0, -1.0, 2.0])
    torch.testing.assert_close(normalise_poses(pose), normalise_poses(moved_and_scaled),
                               atol=1e-5, rtol=0)


def test_kmeans_recovers_well_separated_pose_clusters():
    g = torch.Generator().manual_seed(3)
    base = torch.randn(3, 17, 3, generator=g)
    poses = normalise_poses(torch.cat([b + 0.01 * torch.randn(20, 17, 3, generator=g)
                                       for b in base]))
    ids = torch.cdist(poses, kmeans(poses, 3, seed=0)).argmin(1)  # as robustseg assigns
    for block in ids.split(20):
        assert block.unique().numel() == 1
    assert ids.unique().numel() == 3
    with pytest.raises(ValueError, match="1 <= k <= number of points"):
        kmeans(torch.randn(2, 3), k=5)


# ---- Dirichlet evidence -----------------------------------------------------------------


def test_dirichlet_uncertainty_is_k_over_s_and_falls_as_evidence_grows():
    k = 27
    previous = None
    for scale in (0.0, 0.5, 2.0, 10.0, 100.0):
        evidence = torch.full((3, k), scale)
        dist = dirichlet_from_evidence(evidence)
        s = (evidence + 1).sum(-1)
        torch.testing.assert_close(dist.uncertainty, k / s)
        # belief masses and uncertainty sum to one (subjective logic)
        torch.testing.assert_close(dist.belief.sum(-1) + dist.uncertainty, torch.ones(3))
        if previous is not None:
            assert bool((dist.uncertainty < previous).all())
        previous = dist.uncertainty
    assert float(dirichlet_from_evidence(torch.zeros(1, k)).uncertainty) == pytest.approx(1.0)


def test_dirichlet_rejects_negative_evidence():
    with pytest.raises(ValueError, match="evidence must be non-negative"):
        dirichlet_from_evidence(torch.tensor([[1.0, -0.1]]))


def test_prototype_evidence_is_largest_for_the_nearest_prototype():
    protos = torch.eye(4)
    feats = torch.tensor([[1.0, 0.1, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0]])
    ev = prototype_evidence(feats, protos, temperature=0.1)
    assert ev.argmax(-1).tolist() == [0, 3]
    assert bool((ev >= 0).all())


def test_evidential_loss_prefers_evidence_for_the_true_class():
    labels = torch.tensor([1])
    right = dirichlet_from_evidence(torch.tensor([[0.0, 20.0, 0.0]]))
    wrong = dirichlet_from_evidence(torch.tensor([[20.0, 0.0, 0.0]]))
    assert float(evidential_loss(right, labels, 0.1)) < float(evidential_loss(wrong, labels, 0.1))


def test_prototype_infonce_ignores_classes_without_a_prototype():
    protos = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.01]])
    feats = torch.tensor([[1.0, 0.0]])
    valid_all = torch.tensor([True, True, True])
    valid_two = torch.tensor([True, True, False])
    with_twin = prototype_infonce(feats, torch.tensor([0]), protos, valid_all)
    without = prototype_infonce(feats, torch.tensor([0]), protos, valid_two)
    assert float(without) < float(with_twin)


def test_disagreement_is_zero_for_agreeing_or_lone_modalities_and_one_for_opposites():
    a = torch.tensor([1.0, 0.0])
    b = torch.tensor([0.0, 1.0])
    probs = torch.stack([torch.stack([a, a, b]), torch.stack([a, b, b]), torch.stack([a, b, b])])
    present = torch.tensor([[True, True, False], [True, True, False], [True, False, False]])
    d = pairwise_disagreement(probs, present)
    torch.testing.assert_close(d, torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(combine_uncertainty(torch.tensor([0.2]), torch.tensor([0.5])),
                               torch.tensor([0.6]))
