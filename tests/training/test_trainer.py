import json

import pytest
import torch
from rigserve.sensors.specs import all_subsets, subset_name
from rigserve.training import load_run, train
from rigserve.training.checkpoint import CheckpointError, read_checkpoint
from rigserve.training.data import DataError

from tests.training.helpers import tiny_config
from tests.training.rig import PREPROCESS, write_tiny_rig


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    return write_tiny_rig(tmp_path_factory.mktemp("rig"), frames=4)


def _cfg(rig, out, **kw):
    base = {"data": str(rig), "out": str(out), "preprocess": PREPROCESS, "optim.epochs": 2}
    base.update(kw)
    return tiny_config(**base)


def test_run_evaluates_every_subset_and_writes_its_folder(rig, tmp_path):
    run = train(_cfg(rig, tmp_path / "run"))
    loaded = load_run(run)
    assert loaded.modalities == ("depth", "lidar", "wifi")
    names = [subset_name(s) for s in all_subsets(loaded.modalities)]
    assert list(loaded.metrics) == names
    for row in loaded.metrics.values():
        assert row["mpjpe_mm"] > 0
        assert row["pa_mpjpe_mm"] <= row["mpjpe_mm"]
        assert 0 <= row["action_top1"] <= 1
    assert sum(loaded.weights.values()) == pytest.approx(1.0)
    assert loaded.strategy == "pta"
    assert loaded.spec.lidar_points == 32
    doc = json.loads((run / "metrics.json").read_text())
    assert set(doc["subsets"]) == set(names)
    assert "mean" in doc
    assert {p.name for p in (run / "plots").iterdir()} == {"subsets.png", "weights.png",
                                                            "losses.png"}
    assert (run / "config.yaml").exists()
    assert (run / "split.json").exists()
    # θ moved: the meta step ran on the held-out split.
    history = read_checkpoint(run)["history"]["weights"]
    assert history[0] != history[-1]


def test_resumed_run_continues_identically(rig, tmp_path):
    straight = train(_cfg(rig, tmp_path / "a"))
    train(_cfg(rig, tmp_path / "b"), until_epoch=1)
    assert read_checkpoint(tmp_path / "b")["epoch"] == 1
    resumed = train(_cfg(rig, tmp_path / "b"), resume=True)
    a, b = read_checkpoint(straight), read_checkpoint(resumed)
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, rtol=0, atol=0, msg=k)
    assert a["metrics"] == b["metrics"]


def test_run_on_a_folder_with_only_some_modalities_uses_those(tmp_path):
    rig = write_tiny_rig(tmp_path / "rig", modalities=("lidar", "mmwave"), frames=3)
    run = train(_cfg(rig, tmp_path / "run", **{"optim.epochs": 1}))
    loaded = load_run(run)
    assert loaded.modalities == ("lidar", "mmwave")
    assert set(loaded.metrics) == {"lidar", "mmwave", "lidar+mmwave"}


def test_asking_for_a_modality_the_folder_lacks_names_what_it_has(tmp_path):
    rig = write_tiny_rig(tmp_path / "rig", modalities=("lidar",), frames=2)
    with pytest.raises(DataError, match=r"modalities \['wifi'\] requested but the data folder "
                                        r"has only \['lidar'\]"):
        train(_cfg(rig, tmp_path / "run", modalities="lidar,wifi"))


@pytest.mark.parametrize("preset", ["no_meta", "pta_first_order", "unimodal", "xfi_dropout"])
def test_ablation_presets_train_and_evaluate(rig, tmp_path, preset):
    cfg = _cfg(rig, tmp_path / preset, preset=preset, **{"optim.epochs": 1})
    loaded = load_run(train(cfg))
    assert len(loaded.metrics) == 7
    if preset in ("no_meta", "unimodal", "xfi_dropout"):
        assert loaded.weights == pytest.approx({"depth": 1 / 3, "lidar": 1 / 3, "wifi": 1 / 3})


def test_load_run_on_a_folder_without_checkpoint_says_what_it_expects(tmp_path):
    with pytest.raises(CheckpointError, match=r"no checkpoint; expected a run folder"):
        load_run(tmp_path)
