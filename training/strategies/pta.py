"""``pta``: Purify-then-Align (arXiv 2604.05584) — diffusion alignment of every
single-modality student to the purified teacher, DiffKD-style.

Per step, with f_i the students' features and f_T the purified teacher (``_teacher``):

    z_T, L_rec = AE(f_T)                            teacher latent + reconstruction
    L_diff = ‖ε − ε_φ(√ᾱ_t z_T + √(1−ᾱ_t) ε, t)‖²    standard diffusion loss on z_T
    z_S = P_i(f_i);  γ = adapter(z_S);  z = γ z_S + (1−γ) ε
    ẑ_S = DDIM_5(z);  L_kd = mean_i MSE(ẑ_S, z_T)
    L_DiffKD = L_diff + L_kd + L_rec;   L_inner = L_task + λ L_DiffKD

The meta step on θ (the "Purify" half) lives in the trainer; everything here is training
only: the exported engines are encoders, fusion and heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..config import TrainConfig
from ..diffusion import DDIMScheduler, FeatureAutoencoder, NoiseAdapter, NoisePredictor
from ..losses import task_loss
from ..model import MultimodalModel
from ._base import Batch, Strategy, register_strategy
from ._teacher import teacher_feature


@register_strategy("pta")
class PTA(Strategy):
    def __init__(self, model: MultimodalModel, cfg: TrainConfig) -> None:
        super().__init__(model, cfg)
        a, dim = cfg.align, cfg.model.dim
        self.scheduler = DDIMScheduler(a.train_steps, a.beta_start, a.beta_end, a.inference_steps)
        self.autoencoder = FeatureAutoencoder(dim, a.latent_dim)
        self.student_proj = nn.ModuleDict({m: nn.Linear(dim, a.latent_dim)
                                           for m in model.modalities})
        self.noise_net = NoisePredictor(a.latent_dim)
        self.adapter = NoiseAdapter(a.latent_dim)

    def forward(self, model: MultimodalModel, batch: Batch) -> dict[str, torch.Tensor]:
        feats = model.encode(batch.inputs)
        out = model.heads_forward(model.fuse(feats, batch.present))
        losses = task_loss(out, batch.joints, batch.action, self.cfg.loss)
        losses.update(self.diffkd(model, feats))
        losses["loss"] = losses["task"] + self.kd_weight() * losses["kd"]
        return losses

    def diffkd(self, model: MultimodalModel, feats: dict[str, torch.Tensor]
               ) -> dict[str, torch.Tensor]:
        f_t = teacher_feature(model, feats)
        _, recon = self.autoencoder(f_t)  # trains the autoencoder
        # The diffusion model and the students chase z_T with the autoencoder held fixed,
        # yet z_T stays a function of θ (through f_T) for the look-ahead hypergradient.
        fixed = {k: v.detach() for k, v in self.autoencoder.encoder.named_parameters()}
        z_t = functional_call(self.autoencoder.encoder, fixed, (f_t,))
        b = z_t.shape[0]
        t = torch.randint(0, self.scheduler.train_steps, (b,), device=z_t.device)
        eps = torch.randn_like(z_t)
        diff = F.mse_loss(self.noise_net(self.scheduler.add_noise(z_t, eps, t), t), eps)
        align, gammas = [], []
        for m, f in feats.items():
            z_s = self.student_proj[m](f)
            gamma = self.adapter(z_s).unsqueeze(-1)  # (B, 1)
            z = gamma * z_s + (1 - gamma) * torch.randn_like(z_s)
            align.append(F.mse_loss(self.scheduler.sample(self.noise_net, z), z_t))
            gammas.append(gamma.mean())
        kd_align = torch.stack(align).mean()
        recon_term = recon if self.cfg.align.recon else recon.detach() * 0
        return {"kd": diff + kd_align + recon_term, "diff": diff, "align": kd_align,
                "recon": recon, "gamma": torch.stack(gammas).mean().detach()}
