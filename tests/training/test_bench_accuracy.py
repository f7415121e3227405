"""``rigserve bench accuracy``: its rig, its preset list and a tiny end-to-end run."""

from __future__ import annotations

import argparse
import json

import pytest
from rigserve.training import load_run, train
from rigserve.training.config import PRESETS, method_presets
from rigserve.training.evaluate import mean_row

from rigserve.bench import accuracy
from tests.training.helpers import tiny_config
from tests.training.rig import PREPROCESS, write_tiny_rig


def _args(tmp_path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    accuracy.add_arguments(parser)
    return parser.parse_args(["--work", str(tmp_path), *extra])


def test_default_presets_cover_every_ablation_and_every_other_strategy(tmp_path):
    names = accuracy.default_presets()
    assert set(PRESETS) - {"multimodal"} <= set(names)
    assert set(method_presets()) <= set(names)
    assert _args(tmp_path).depth_size == "60x80"  # the demo's camera, not 480x640


def test_subjects_are_dealt_over_the_four_environments():
    assert accuracy._subjects(6) == ["S01", "S02", "S11", "S12", "S21", "S31"]
    with pytest.raises(ValueError, match="at most 40"):
        accuracy._subjects(41)


def test_depth_size_names_the_expected_form():
    assert accuracy._depth_size("60x80") == (60, 80)
    with pytest.raises(ValueError, match=r"expected HxW, e\.g\. 60x80"):
        accuracy._depth_size("60")


def test_results_are_read_from_metrics_json_and_match_the_reloaded_run(tmp_path):
    rig = write_tiny_rig(tmp_path / "rig", frames=3)
    cfg = tiny_config(data=str(rig), out=str(tmp_path / "run"), preprocess=PREPROCESS,
                      **{"optim.epochs": 1})
    run = train(cfg)
    got = accuracy._finished(run)
    loaded = load_run(run)
    assert got["metrics"] == loaded.metrics  # JSON round-trips Python floats exactly
    assert got["weights"] == pytest.approx(loaded.weights)
    assert got["mean"] == pytest.approx(mean_row(loaded.metrics))


def test_a_run_without_its_metrics_names_what_is_missing(tmp_path):
    with pytest.raises(RuntimeError, match="missing subsets, mean, weights"):
        accuracy._finished(tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps({"subsets": {}, "mean": {}}))
    with pytest.raises(RuntimeError, match=r"metrics\.json: expected a finished run's "
                                           r"subsets, mean and weights, missing weights$"):
        accuracy._finished(tmp_path)


@pytest.mark.slow
def test_tiny_benchmark_trains_each_preset_and_reports_tables_and_step_costs(tmp_path, capsys):
    args = _args(tmp_path, "--tiny", "--subjects", "4", "--actions", "1", "--frames", "4",
                 "--epochs", "1", "--presets", "pta,no_kd", "--timing-steps", "4")
    assert accuracy.run(args) == 0
    out = capsys.readouterr().out
    for needle in ("| subset | pta | no_kd |", "| depth+lidar+wifi |", "multimodal (plain)",
                   "look-ahead all, every 4 (default)", "the 2.5x budget", "Training wall time"):
        assert needle in out
