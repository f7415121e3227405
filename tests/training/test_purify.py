import pytest
import torch
from rigserve.training.factory import build_model
from rigserve.training.purify import THETA, TrainModule, first_order_grad, lookahead_step
from rigserve.training.strategies import Batch

from tests.training.helpers import SHAPES, random_inputs, tiny_config

MODS = ("depth", "lidar", "wifi")


def _problem(strategy: str):
    cfg = tiny_config(strategy=strategy, modalities=list(MODS))
    model, strat = build_model(cfg, SHAPES)
    module = TrainModule(model, strat).double()
    with torch.no_grad():
        model.theta.copy_(torch.tensor([0.2, -0.3, 0.1]))

    def batch(seed: int, n: int) -> Batch:
        g = torch.Generator().manual_seed(seed)
        x = {m: v.double() for m, v in random_inputs(MODS, n, seed).items()}
        present = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0]] * n)[:n].double()
        return Batch(x, torch.randn(n, 17, 3, generator=g, dtype=torch.float64),
                     torch.randint(0, 27, (n,), generator=g), present)

    return cfg, module, batch(1, 4), batch(2, 4)


def _lookahead_value(module, train, val, alpha, cfg, scope) -> float:
    """F(θ) = L_task(Θ − α∇Θ L_inner(Θ, θ), θ) on the validation batch, evaluated directly."""
    from rigserve.training.purify import inner_params, val_task_loss

    torch.manual_seed(7)  # same diffusion noise as the analytic pass
    params = inner_params(module, scope)
    loss = module(train)["loss"]
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    stepped = {n: p - alpha * g for (n, p), g in zip(params.items(), grads, strict=True)
               if g is not None}
    return float(val_task_loss(module, stepped, val, cfg.loss, scope).detach())


@pytest.mark.parametrize(("strategy", "scope"), [("feature_kd", "all"), ("pta", "all"),
                                                 ("task_only", "head")])
def test_lookahead_hypergradient_matches_finite_differences(strategy, scope):
    cfg, module, train, val = _problem(strategy)
    alpha, h = 0.5, 1e-5
    torch.manual_seed(7)
    _, analytic = lookahead_step(module, train, val, alpha=alpha, loss_cfg=cfg.loss, scope=scope)
    theta = module.get_parameter(THETA)
    numeric = torch.zeros(3, dtype=torch.float64)
    for k in range(3):
        with torch.no_grad():
            theta[k] += h
        up = _lookahead_value(module, train, val, alpha, cfg, scope)
        with torch.no_grad():
            theta[k] -= 2 * h
        down = _lookahead_value(module, train, val, alpha, cfg, scope)
        with torch.no_grad():
            theta[k] += h
        numeric[k] = (up - down) / (2 * h)
    assert numeric.abs().max() > 1e-6  # θ does move the look-ahead loss
    torch.testing.assert_close(analytic, numeric, rtol=1e-4, atol=1e-8)


def test_lookahead_differs_from_first_order_and_fills_inner_gradients():
    cfg, module, train, val = _problem("task_only")
    torch.manual_seed(7)
    _, hyper = lookahead_step(module, train, val, alpha=0.5, loss_cfg=cfg.loss, scope="all")
    first = first_order_grad(module, val, cfg.loss)
    assert not torch.allclose(hyper, first)
    enc = module.model.encoders["depth"]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())


def test_first_order_gradient_is_the_validation_loss_gradient():
    cfg, module, _, val = _problem("task_only")
    grad = first_order_grad(module, val, cfg.loss)
    theta = module.get_parameter(THETA)
    from rigserve.training.losses import task_loss

    def loss_at(t):
        with torch.no_grad():
            old = theta.clone()
            theta.copy_(t)
            out = module.model(val.inputs, val.present)
            value = float(task_loss(out, val.joints, val.action, cfg.loss)["task"])
            theta.copy_(old)
        return value

    h = 1e-6
    numeric = torch.stack([
        torch.tensor((loss_at(theta + h * e) - loss_at(theta - h * e)) / (2 * h),
                     dtype=torch.float64)
        for e in torch.eye(3, dtype=torch.float64)])
    torch.testing.assert_close(grad, numeric, rtol=1e-4, atol=1e-9)


def test_unknown_lookahead_scope_is_refused():
    cfg, module, train, val = _problem("task_only")
    with pytest.raises(ValueError, match=r"purify.params='encoders'.*accepted: all, head"):
        lookahead_step(module, train, val, alpha=0.1, loss_cfg=cfg.loss, scope="encoders")
