"""Pose and action metrics as MM-Fi reports them (millimetres)."""

from __future__ import annotations

import numpy as np


def mpjpe_mm(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-joint position error, no root alignment; (N, J, 3) metres → mm."""
    return float(np.linalg.norm(pred - gt, axis=-1).mean() * 1000.0)


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame similarity transform (s, R, t) of ``pred`` that best fits ``gt``
    (Umeyama 1991): minimise Σ‖s R p_j + t − g_j‖², R a proper rotation."""
    mu_p, mu_g = pred.mean(1, keepdims=True), gt.mean(1, keepdims=True)
    p, g = pred - mu_p, gt - mu_g  # (N, J, 3)
    h = np.einsum("nji,njk->nik", p, g)  # (N, 3, 3) cross-covariance
    u, sig, vt = np.linalg.svd(h)
    # Flip the last axis where the best orthogonal map is a reflection.
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", vt.transpose(0, 2, 1),
                                        u.transpose(0, 2, 1))))
    fix = np.ones_like(sig)
    fix[:, -1] = d
    r = np.einsum("nij,nj,nkj->nik", vt.transpose(0, 2, 1), fix, u)  # (N, 3, 3): g ≈ R p
    var_p = (p**2).sum(axis=(1, 2))
    scale = (sig * fix).sum(1) / np.maximum(var_p, 1e-12)
    return scale[:, None, None] * np.einsum("nik,njk->nji", r, p) + mu_g


def pa_mpjpe_mm(pred: np.ndarray, gt: np.ndarray) -> float:
    """MPJPE after per-frame Procrustes alignment (rotation, translation, scale)."""
    return mpjpe_mm(procrustes_align(pred.astype(np.float64), gt.astype(np.float64)), gt)


def top1(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(-1) == labels).mean())
