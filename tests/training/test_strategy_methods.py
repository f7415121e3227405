"""Every robust-distillation method trains on a tiny rig folder and exports one verified
engine per modality subset, through the same `train` and `export_run` as PTA."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from rigserve.export import ExportOptions, export_run
from rigserve.export.manifest import load_manifest
from rigserve.training.checkpoint import load_run
from rigserve.training.config import TrainConfig, method_presets
from rigserve.training.data import load_data
from rigserve.training.factory import build_model
from rigserve.training.strategies import STRATEGIES, Batch, create_strategy
from rigserve.training.trainer import Trainer, train

from tests.training.helpers import SHAPES, random_inputs, tiny_config
from tests.training.rig import PREPROCESS, write_tiny_rig

METHODS = ("karmma", "robustseg", "uncertainty", "freqkd")
MODS = ("depth", "lidar")


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory):
    return write_tiny_rig(tmp_path_factory.mktemp("rig"), MODS, frames=4)


@pytest.mark.parametrize("method", METHODS)
def test_method_is_selectable_by_name_and_brings_no_purified_weights(method):
    assert method in STRATEGIES
    model, strategy = build_model(tiny_config(strategy=method, modalities=MODS), SHAPES)
    assert strategy is not None
    assert strategy.name == method
    # PTA's meta-learned θ is PTA's; the trainer skips the meta step without it
    assert model.theta is None


@pytest.mark.parametrize("method", METHODS)
def test_method_trains_on_a_rig_and_exports_every_subset(method, rig, tmp_path):
    cfg = tiny_config(strategy=method, data=str(rig), out=str(tmp_path / "run"),
                      modalities=list(MODS), preprocess=PREPROCESS, **{
                          "optim.epochs": 3, "optim.batch_size": 16})
    run = train(cfg)
    loaded = load_run(run)
    assert loaded.strategy == method
    assert set(loaded.metrics) == {"depth", "lidar", "depth+lidar"}
    for row in loaded.metrics.values():
        assert np.isfinite(row["mpjpe_mm"])

    manifest = export_run(run, tmp_path / "repo", ExportOptions(parity_frames=8,
                                                                calibration_frames=4))
    repo = load_manifest(tmp_path / "repo", verify=True)
    assert sorted(e.subset for e in manifest.engines) == [("depth",), ("depth", "lidar"),
                                                          ("lidar",)]
    expected_outputs = {"joints", "action_logits"} | ({"uncertainty"} if method ==
                                                      "uncertainty" else set())
    assert set(repo.outputs) == expected_outputs
    # the engine answers for a subset on its own inputs only
    entry = next(e for e in repo.engines if e.subset == ("lidar",))
    session = ort.InferenceSession(str(tmp_path / "repo" / entry.path))
    assert [i.name for i in session.get_inputs()] == ["lidar"]
    x = random_inputs(("lidar",), 3)["lidar"].numpy()
    outs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"lidar": x}),
                    strict=True))
    assert outs["joints"].shape == (3, 17, 3)


@pytest.mark.parametrize("method", METHODS)
def test_method_rejects_an_unknown_option_naming_the_accepted_ones(method):
    model, _ = build_model(tiny_config(strategy="task_only", modalities=MODS), SHAPES)
    with pytest.raises(ValueError, match=rf"strategy '{method}': unknown option\(s\) bogus; "
                                         r"accepted: .+"):
        create_strategy(method, model, tiny_config(), bogus=1)


@pytest.mark.parametrize("method", METHODS)
def test_method_overfits_a_fixed_batch(method):
    cfg = tiny_config(strategy=method, modalities=MODS, **{"optim.epochs": 1})
    model, strategy = build_model(cfg, SHAPES)
    params = list(model.parameters()) + list(strategy.parameters())
    opt = torch.optim.AdamW(params, lr=3e-3)
    g = torch.Generator().manual_seed(1)
    present = torch.ones(8, 2)
    present[::2, 0] = 0.0
    batch = Batch(random_inputs(MODS, 8), torch.randn(8, 17, 3, generator=g),
                  torch.randint(0, 27, (8,), generator=g), present)
    first = None
    for _ in range(25):
        opt.zero_grad(set_to_none=True)
        losses = strategy(model, batch)
        losses["loss"].backward()
        opt.step()
        first = first if first is not None else float(losses["task"].detach())
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert float(losses["task"].detach()) < 0.95 * first


def test_every_method_is_a_benchmark_preset_through_the_registry():
    assert set(METHODS) <= set(method_presets())
    assert "pta" not in method_presets()  # covered by the named presets already
    assert TrainConfig.from_sources(preset="uncertainty").strategy == "uncertainty"


def test_trainer_gives_robustseg_teacher_encoders_the_low_feedback_rate(rig, tmp_path):
    cfg = tiny_config(strategy="robustseg", data=str(rig), out=str(tmp_path / "run"),
                      modalities=list(MODS), preprocess=PREPROCESS)
    trainer = Trainer(cfg, load_data(cfg))
    lrs = {}
    for group in trainer.opt.param_groups:
        for p in group["params"]:
            lrs[id(p)] = group["initial_lr"]  # the rate before warm-up scales it
    base = cfg.optim.lr
    teacher = {id(p) for p in trainer.module.strategy.teacher.encoders.parameters()}
    assert sorted({lrs[i] for i in teacher}) == [pytest.approx(base * 0.1)]
    assert sorted({lr for i, lr in lrs.items() if i not in teacher}) == [pytest.approx(base)]
