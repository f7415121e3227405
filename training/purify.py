"""Purify: the meta-learned modality weights θ (PTA sec. "Purify"), two estimators.

``lookahead`` — the nested problem min_θ L_val(Θ*(θ), θ) with Θ* approximated by one
inner step (DARTS-style, Liu et al. 2019, eq. 6-7):

    Θ'(θ) = Θ − α ∇_Θ L_inner(Θ, θ)
    g_θ   = d/dθ L_task(Θ'(θ), θ)   on a meta-validation batch

computed exactly by differentiating through the inner gradient (``create_graph``) with
``torch.func.functional_call``. ``params="head"`` restricts the look-ahead to the
fusion and heads (the encoders' Θ' is their current Θ), which avoids a double backward
through the encoders.

``first_order`` — g_θ = ∇_θ L_task(Θ, θ) on the meta-validation batch: a periodic
gradient step from the validation loss of the weighted fusion, no look-ahead.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from .config import LossConfig
from .losses import task_loss
from .strategies import Batch

THETA = "model.fusion.theta"

class TrainModule(nn.Module):
    """Model + strategy as one module, so one parameter dict drives functional calls."""

    def __init__(self, model: nn.Module, strategy: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.strategy = strategy

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self.strategy(self.model, batch)


def inner_params(module: TrainModule, scope: str) -> dict[str, torch.Tensor]:
    """Θ: the trainable parameters the look-ahead steps, θ excluded."""
    if scope not in ("all", "head"):
        raise ValueError(f"purify.params={scope!r}; accepted: all, head")
    head_prefixes = ("model.fusion.", "model.norm.", "model.heads.")
    out = {}
    for name, p in module.named_parameters():
        if name == THETA or not p.requires_grad:
            continue
        if scope == "all" or name.startswith(head_prefixes):
            out[name] = p
    if not out:
        raise ValueError(f"purify.params={scope!r} selects no trainable parameters")
    return out


def val_task_loss(module: TrainModule, params: dict[str, torch.Tensor], val: Batch,
                  loss_cfg: LossConfig, scope: str) -> torch.Tensor:
    """L_task(Θ', θ) of the fused prediction on a meta-validation batch."""
    model = module.model
    sub = _under(params, "model.")  # the strategy's own parts do not predict
    if scope == "head":
        with torch.no_grad():  # encoders are not in Θ' for the head-only look-ahead
            feats = model.encode(val.inputs)
        fused = functional_call(model.fusion, _under(sub, "fusion."), (feats, val.present))
        out = _heads(model, sub, fused)
    else:
        out = functional_call(model, sub, (val.inputs, val.present))
    return task_loss(out, val.joints, val.action, loss_cfg)["task"]


def _under(params: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in params.items() if k.startswith(prefix)}


def _heads(model: nn.Module, params: dict[str, torch.Tensor], fused: torch.Tensor
           ) -> dict[str, torch.Tensor]:
    h = functional_call(model.norm, _under(params, "norm."), (fused,))
    return {name: functional_call(head, _under(params, f"heads.{name}."), (h,))
            for name, head in model.heads.items()}


def lookahead_step(module: TrainModule, batch: Batch, val: Batch, *, alpha: float,
                   loss_cfg: LossConfig, scope: str = "all"
                   ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One inner forward/backward that serves both updates.

    Returns the strategy's losses (with every Θ's ``.grad`` filled for the optimiser)
    and g_θ, the look-ahead hypergradient.
    """
    theta = module.get_parameter(THETA)
    params = {n: p for n, p in module.named_parameters() if p.requires_grad and n != THETA}
    scoped = inner_params(module, scope)
    losses = module(batch)
    # Only the scoped Θ need a differentiable gradient (create_graph); the rest (the
    # encoders under params="head") get a plain backward, which is what keeps the
    # head-only look-ahead close to a plain step: no double backward through the convs.
    names = list(scoped) + [n for n in params if n not in scoped]
    first = torch.autograd.grad(losses["loss"], [params[n] for n in scoped], create_graph=True,
                                allow_unused=True)
    # retain_graph: the hypergradient below differentiates ``first``, whose graph reuses
    # the forward's saved tensors.
    rest = torch.autograd.grad(losses["loss"], [params[n] for n in names[len(scoped):]],
                               retain_graph=True, allow_unused=True) \
        if len(scoped) < len(params) else ()
    grads = (*first, *rest)
    stepped = {n: params[n] - alpha * g for n, g in zip(scoped, first, strict=True)
               if g is not None}
    hyper = torch.autograd.grad(val_task_loss(module, stepped, val, loss_cfg, scope), theta,
                                allow_unused=True)[0]
    for n, g in zip(names, grads, strict=True):
        params[n].grad = None if g is None else g.detach()
    # θ's own gradient from the inner loss is not used: θ moves only by the meta step.
    return losses, torch.zeros_like(theta) if hyper is None else hyper


def first_order_grad(module: TrainModule, val: Batch, loss_cfg: LossConfig) -> torch.Tensor:
    """∇_θ L_task(Θ, θ) on a meta-validation batch (encoders frozen for this pass)."""
    theta = module.get_parameter(THETA)
    loss = val_task_loss(module, {}, val, loss_cfg, "head")
    grad = torch.autograd.grad(loss, theta, allow_unused=True)[0]
    return torch.zeros_like(theta) if grad is None else grad
