"""The training loop: inner steps on L_inner, meta steps on θ, checkpoints, resume.

``train(config) -> RUN`` is the library entry point the CLI and the benchmark call.
Deterministic on CPU for a given seed: batches and dropout masks come from one seeded
generator, the strategies' noise from torch's global RNG, and both states are saved in
every checkpoint, so ``resume`` continues exactly where an epoch ended.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .augment import augment_inputs
from .checkpoint import CHECKPOINT, read_checkpoint, save_checkpoint
from .config import ConfigError, TrainConfig
from .data import ArraySet, RunData, load_data
from .distributed import DistInfo, average_gradients, average_tensor, barrier, init_from_env
from .dropout import sample_present
from .evaluate import evaluate_subsets
from .factory import build_model
from .late_fusion import LateFusionModel
from .model import MultimodalModel
from .purify import THETA, TrainModule, first_order_grad, lookahead_step
from .report import write_plots, write_reports
from .strategies import STRATEGIES, Batch

log = logging.getLogger(__name__)


class Trainer:
    def __init__(self, cfg: TrainConfig, data: RunData, info: DistInfo | None = None) -> None:
        self.cfg = cfg.replace(modalities=list(data.modalities))
        self.data = data
        self.info = info or DistInfo()
        torch.manual_seed(cfg.seed)
        model, strategy = build_model(self.cfg.replace(unimodal=False), data.input_shapes)
        if not isinstance(model, MultimodalModel) or strategy is None:
            raise TypeError(f"Trainer trains one joint model, got {type(model).__name__}")
        if "joints" in model.heads:
            model.heads["joints"].mean_pose.copy_(data.train.joints.mean(0))
        self.model = model
        self.module = TrainModule(model, strategy)
        self.meta_on = cfg.purify.mode != "none" and model.theta is not None
        if model.theta is not None:
            model.theta.requires_grad_(self.meta_on)
        named = [(n, p) for n, p in self.module.named_parameters() if n != THETA]
        self.params = [p for _, p in named]
        o = cfg.optim
        # Strategies may ask for slower learners (RobustSeg's teacher feedback).
        self.opt = torch.optim.AdamW(strategy.param_groups(named, o.lr), lr=o.lr,
                                     weight_decay=o.weight_decay)
        self.steps_per_epoch = max(1, math.ceil(len(data.train) / o.batch_size))
        total = self.steps_per_epoch * o.epochs
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_factor(s, total, round(o.warmup * total)))
        self.meta_opt = (torch.optim.Adam([model.theta], lr=cfg.purify.meta_lr)
                         if self.meta_on else None)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.epoch = 0
        self.step_count = 0
        self.history: dict[str, list[Any]] = {"losses": [], "weights": [model.purified_weights()]}

    # ---- one step ------------------------------------------------------------------

    def make_batch(self, data: ArraySet, idx: torch.Tensor, *, augment: bool = False) -> Batch:
        part = data.take(idx)
        present = sample_present(len(idx), self.model.modalities, self.cfg.dropout, self.gen)
        inputs = augment_inputs(part.inputs, self.cfg.augment, self.gen) if augment \
            else part.inputs
        return Batch(inputs, part.joints, part.action, present)

    def meta_batch(self) -> Batch:
        n = len(self.data.meta)
        idx = torch.randint(0, n, (min(n, self.cfg.optim.batch_size),), generator=self.gen)
        batch = self.make_batch(self.data.meta, idx)
        if self.cfg.purify.val_present == "all":  # else "subset" (PurifyConfig checks it)
            batch.present = torch.ones_like(batch.present)
        return batch

    def step(self, batch: Batch) -> dict[str, float]:
        p = self.cfg.purify
        meta_now = self.meta_on and self.step_count % p.every == 0
        self.module.strategy.set_progress(self.step_count,
                                          self.steps_per_epoch * self.cfg.optim.epochs)
        self.opt.zero_grad(set_to_none=True)
        hyper = None
        if meta_now and p.mode == "lookahead":
            losses, hyper = lookahead_step(self.module, batch, self.meta_batch(), alpha=p.inner_lr,
                                           loss_cfg=self.cfg.loss, scope=p.params)
        else:
            losses = self.module(batch)
            losses["loss"].backward()
            # With meta on, the mode is lookahead or first_order: PurifyConfig rejects others.
            if meta_now and p.mode == "first_order":
                hyper = first_order_grad(self.module, self.meta_batch(), self.cfg.loss)
        average_gradients(self.params, self.info)
        torch.nn.utils.clip_grad_norm_(self.params, self.cfg.optim.grad_clip)
        self.opt.step()
        self.sched.step()
        if hyper is not None and self.meta_opt is not None:
            theta = self.model.theta
            assert theta is not None
            theta.grad = average_tensor(hyper.detach().clone(), self.info)
            self.meta_opt.step()
        self.step_count += 1
        return {k: float(v.detach()) for k, v in losses.items()}

    # ---- epochs ----------------------------------------------------------------------

    def run_epoch(self) -> dict[str, float]:
        n, bs = len(self.data.train), self.cfg.optim.batch_size
        perm = torch.randperm(n, generator=self.gen)
        sums: dict[str, float] = defaultdict(float)
        bar = tqdm(range(self.steps_per_epoch), desc=f"epoch {self.epoch + 1}/"
                   f"{self.cfg.optim.epochs}", leave=False,
                   disable=not (self.cfg.progress and self.info.main))
        for i in bar:
            idx = perm[i * bs:(i + 1) * bs]
            batch = self.make_batch(self.data.train, idx[self.info.rank::self.info.world],
                                    augment=True)
            losses = self.step(batch)
            for k, v in losses.items():
                sums[k] += v
            bar.set_postfix(loss=f"{losses['loss']:.3f}")
        self.module.strategy.on_epoch_end(self.model, self.epoch)
        self.epoch += 1
        means = {k: v / self.steps_per_epoch for k, v in sums.items()}
        self.history["losses"].append(means)
        self.history["weights"].append(self.model.purified_weights())
        log.info("epoch %d: %s weights %s", self.epoch,
                 " ".join(f"{k}={v:.4f}" for k, v in means.items()),
                 self.history["weights"][-1])
        return means

    # ---- state -------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(), "input_shapes": self.data.input_shapes,
            "modalities": list(self.model.modalities), "model": self.model.state_dict(),
            "strategy_state": dict(self.module.strategy.state_dict()),
            "optimizers": {"inner": self.opt.state_dict(), "sched": self.sched.state_dict(),
                           "meta": self.meta_opt.state_dict() if self.meta_opt else None},
            "epoch": self.epoch, "step": self.step_count, "history": self.history,
            "rng": {"batches": self.gen.get_state(), "torch": torch.get_rng_state()},
            "split": self.data.split,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.module.strategy.load_state_dict(state["strategy_state"])
        self.opt.load_state_dict(state["optimizers"]["inner"])
        self.sched.load_state_dict(state["optimizers"]["sched"])
        if self.meta_opt is not None and state["optimizers"]["meta"] is not None:
            self.meta_opt.load_state_dict(state["optimizers"]["meta"])
        self.epoch, self.step_count = state["epoch"], state["step"]
        self.history = state["history"]
        self.gen.set_state(state["rng"]["batches"])
        torch.set_rng_state(state["rng"]["torch"])

    def fit(self, run: Path | None, until_epoch: int | None = None) -> None:
        stop = min(self.cfg.optim.epochs, until_epoch or self.cfg.optim.epochs)
        bar = tqdm(total=stop, initial=self.epoch, desc="training", unit="epoch",
                   disable=not (self.cfg.progress and self.info.main))
        while self.epoch < stop:
            means = self.run_epoch()
            bar.update(1)
            bar.set_postfix(loss=f"{means['loss']:.3f}")
            if run is not None and self.info.main:
                save_checkpoint(run / CHECKPOINT, self.state())
            barrier(self.info)
        bar.close()


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``.

    The warm-up keeps Adam's first steps (its second-moment estimate still tiny) from
    throwing the freshly initialised heads far off at the higher learning rates that
    CPU-sized runs need to learn in a few epochs.
    """
    if step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(step - warmup, span) / span))


# ---- the library entry point ------------------------------------------------------------


def train(cfg: TrainConfig, *, resume: bool = False, until_epoch: int | None = None) -> Path:
    """Train the run ``cfg`` describes into ``cfg.out`` and evaluate every subset.

    ``resume`` continues from ``RUN/checkpoint.pt`` (its config wins, except
    ``optim.epochs``); ``until_epoch`` stops early (the run stays resumable).
    """
    if not cfg.out:
        raise ValueError("config.out is empty: give the run folder (--out RUN)")
    run = Path(cfg.out)
    if run.exists() and not run.is_dir():
        raise NotADirectoryError(f"run folder {run} exists and is not a folder")
    # A misspelt strategy fails now, not after the data folder has been read.
    check_strategy(cfg.strategy)
    info = init_from_env()
    if resume and (run / CHECKPOINT).exists():
        state = read_checkpoint(run)
        epochs = cfg.optim.epochs
        cfg = TrainConfig.from_dict(state["config"])
        cfg = cfg.replace(optim={"epochs": epochs})
    else:
        state = None
    data = load_data(cfg)  # first: a bad data folder leaves no empty run folder behind
    if info.main:
        run.mkdir(parents=True, exist_ok=True)
    cfg = cfg.replace(modalities=list(data.modalities),
                      preprocess=data.spec.to_dict())
    if info.main:
        cfg.save(run / "config.yaml")
    if cfg.unimodal:
        return _train_unimodal(cfg, data, run, info)
    trainer = Trainer(cfg, data, info)
    if state is not None:
        trainer.load_state(state)
    trainer.fit(run, until_epoch)
    if trainer.epoch >= cfg.optim.epochs and info.main:
        _finish(run, trainer.model, trainer.state(), data, cfg)
    barrier(info)
    return run


def check_strategy(name: str) -> None:
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; accepted: {', '.join(sorted(STRATEGIES))}")


def read_report(run: Path) -> dict[str, Any]:
    """A finished run's ``metrics.json`` ({} while it is unfinished): ``subsets`` (per-subset
    metrics), ``mean`` (their mean row), ``weights`` (purified, modality -> float) and the
    run's ``strategy``, ``preset`` and ``purify`` mode; no model is rebuilt to read it."""
    path = Path(run) / "metrics.json"
    if not path.exists():
        return {}
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def read_metrics(run: Path) -> dict[str, dict[str, float]]:
    """The per-subset metrics of a finished run ({} while it is unfinished)."""
    subsets: dict[str, dict[str, float]] = read_report(run).get("subsets", {})
    return subsets


def _finish(run: Path, model: Any, state: dict[str, Any], data: RunData,
            cfg: TrainConfig) -> None:
    metrics = evaluate_subsets(model, data.val, cfg.eval_batch_size)
    state["metrics"] = metrics
    save_checkpoint(run / CHECKPOINT, state)
    (run / "split.json").write_text(json.dumps(data.split, indent=2))
    write_reports(run, metrics, model.purified_weights(),
                  {"strategy": cfg.strategy, "preset": cfg.preset,
                   "purify": cfg.purify.mode})
    write_plots(run, metrics, state.get("history", {}))
    log.info("run %s finished: %d subsets evaluated", run, len(metrics))


def _train_unimodal(cfg: TrainConfig, data: RunData, run: Path, info: DistInfo) -> Path:
    """Independent single-modality models (no resume: each member trains from scratch)."""
    members, history = {}, {}
    for m in data.modalities:
        trainer = Trainer(cfg.replace(modalities=[m], unimodal=False), data.only((m,)), info)
        trainer.fit(None)
        members[m] = trainer.model
        history[m] = trainer.history
    model = LateFusionModel(members)
    state = {"config": cfg.to_dict(), "input_shapes": data.input_shapes,
             "modalities": list(data.modalities), "model": model.state_dict(),
             "epoch": cfg.optim.epochs, "history": {"losses": history[data.modalities[0]]
                                                    ["losses"]}, "split": data.split}
    if info.main:
        _finish(run, model, state, data, cfg)
    barrier(info)
    return run
