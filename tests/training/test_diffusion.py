import math

import pytest
import torch
from rigserve.training.diffusion import DDIMScheduler, NoiseAdapter


def test_alpha_bar_is_the_product_of_one_minus_linear_betas():
    s = DDIMScheduler(1000, 1e-4, 0.02, 5)
    betas = [1e-4 + (0.02 - 1e-4) * i / 999 for i in range(1000)]
    for t in (0, 1, 500, 999):
        want = math.prod(1 - b for b in betas[: t + 1])
        assert float(s.alpha_bar(t)) == pytest.approx(want, rel=1e-5)
    assert float(s.alpha_bar(-1)) == 1.0
    assert s.timesteps == [800, 600, 400, 200, 0]


def test_add_noise_is_the_closed_form_forward_process():
    s = DDIMScheduler()
    x0, eps = torch.randn(4, 8), torch.randn(4, 8)
    t = torch.tensor([0, 10, 400, 999])
    ab = s.alphas_cumprod[t].unsqueeze(1)
    torch.testing.assert_close(s.add_noise(x0, eps, t), ab.sqrt() * x0 + (1 - ab).sqrt() * eps)


def test_ddim_steps_with_the_true_noise_walk_the_closed_form_path_to_x0():
    """With ε_φ = the true ε, each deterministic step lands on q(x_{t-k} | x_0, ε)
    exactly, and the last one returns x_0."""
    s = DDIMScheduler(inference_steps=5)
    x0, eps = torch.randn(3, 8, dtype=torch.float64), torch.randn(3, 8, dtype=torch.float64)
    s.double()
    x = s.add_noise(x0, eps, torch.full((3,), 800))
    for t in s.timesteps:
        x = s.step(eps, t, x)
        prev = t - s.step_ratio
        want = x0 if prev < 0 else s.add_noise(x0, eps, torch.full((3,), prev))
        torch.testing.assert_close(x, want)

    class Oracle(torch.nn.Module):
        def forward(self, z, t):
            return eps

    torch.testing.assert_close(s.sample(Oracle(), s.add_noise(x0, eps, torch.full((3,), 800))), x0)


def test_noise_adapter_gamma_stays_in_unit_interval_even_for_extreme_inputs():
    adapter = NoiseAdapter(16)
    with torch.no_grad():
        for p in adapter.parameters():
            p.mul_(50)
    for scale in (1e-3, 1.0, 1e3, 1e6):
        gamma = adapter(torch.randn(64, 16) * scale)
        assert gamma.shape == (64,)
        assert bool(((gamma >= 0) & (gamma <= 1)).all())


def test_scheduler_refuses_more_inference_steps_than_training_steps():
    with pytest.raises(ValueError, match=r"inference_steps must be in 1..10, got 20"):
        DDIMScheduler(10, inference_steps=20)
