"""Distillation strategies: each method is one ``nn.Module`` in one file, by name.

The interface (``_base.Strategy``):

* **Construction** ``create_strategy(name, model, cfg)`` once per run, before the
  optimisers exist. ``__init__(model, cfg)`` builds the method's own training-only parts
  (they are trained with the model and saved in the checkpoint, never exported) and may
  change the model's *inference*:
  ``model.add_head("uncertainty", module)`` adds an output read from the fused feature
  (B, dim) that every exported subset engine then returns (``model.output_names``), and
  ``model.fusion = module`` swaps the fusion (``forward(feats: {modality: (B, dim)},
  present: (B, M) 0/1) -> (B, dim)``; it must handle any subset without data-dependent
  control flow, and keep a ``theta`` parameter if it has purified weights).
* **Each step** ``forward(model, batch) -> {"loss": ..., "task": ..., "kd": ..., ...}``
  with a ``Batch`` (``inputs`` per modality, ``present`` (B, M) dropout mask,
  ``joints``, ``action``). ``"loss"`` is what is minimised (the inner loss
  L_inner of PTA); every other scalar is logged. Use ``model.encode``, ``model.fuse``,
  ``model.heads_forward`` and ``losses.task_loss``; freeze the teacher with
  ``torch.no_grad()`` / ``.detach()`` where the method says so. The forward must be a
  pure function of the parameters (the look-ahead meta step re-runs it under
  ``torch.func.functional_call``), so keep running state in buffers, updated in
  ``on_epoch_end(model, epoch)``, not in ``forward``.
* **Registration** ``@register_strategy("name")`` on the class in a new module of this
  package; every public module here is imported when the package is, so the new file is
  the whole change.

Built in: ``pta`` (diffusion alignment, the PTA paper), ``feature_kd`` (plain feature
MSE, the no-diffusion ablation), ``task_only`` (no KD).
"""

import importlib
import pkgutil

from ._base import STRATEGIES, Batch, Strategy, create_strategy, register_strategy

# Import every module so its @register_strategy runs (one file per method).
for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["STRATEGIES", "Batch", "Strategy", "create_strategy", "register_strategy"]
