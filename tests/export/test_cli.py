"""`rigserve export RUN --out REPO` on real run folders (checkpoint.pt written by training)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rigserve.export.exporter import ExportOptions, export_run
from rigserve.export.manifest import load_manifest

from rigserve.cli import main
from tests.core.cli_errors import assert_one_line_error
from tests.export.conftest import simulate_tiny, write_run_dir


def test_cli_exports_a_run_folder_with_int8_and_triton(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run_dir(tmp_path / "run", ("depth", "wifi"))
    repo = tmp_path / "repo"
    code = main(["export", str(run), "--out", str(repo), "--precision", "fp32,int8",
                 "--triton", "--max-batch", "4", "--parity-frames", "6",
                 "--calibration-frames", "6", "--no-progress"])
    assert code == 0
    manifest = load_manifest(repo, verify=True)
    assert sorted(manifest.subsets()) == ["depth", "depth+wifi", "wifi"]
    assert {e.precision for e in manifest.engines} == {"fp32", "int8"}
    assert all(e.max_batch == 4 for e in manifest.engines)
    assert manifest.training["strategy"] == "task_only"
    assert manifest.training["config"]["model"]["dim"] == 16
    assert (repo / "run" / "config.yaml").read_text() == (run / "config.yaml").read_text()
    assert sorted(p.name for p in (repo / "triton").iterdir()) == [
        "rig.depth", "rig.depth+wifi", "rig.wifi"]
    out = capsys.readouterr().out
    assert "6 engines over 3 subsets" in out
    assert "rig.depth+wifi" in out


def test_cli_reports_a_missing_run_and_exits_1(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "repo")]) == 1
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "r"),
                 "--formats", "coreml"]) == 1
    assert "unknown format ['coreml']" in capsys.readouterr().err
    # Refused before a subset is built (it used to fail after every engine, naming the
    # staging folder).
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "r"),
                 "--model-name", "a/b"]) == 1
    assert ("model name 'a/b' is not accepted: letters, digits, '_' and '-' only"
            in capsys.readouterr().err)


def test_run_with_data_and_split_measures_deltas_against_ground_truth(tmp_path: Path) -> None:
    data = simulate_tiny(tmp_path / "data", ("lidar", "wifi"))
    run = write_run_dir(tmp_path / "run", ("lidar", "wifi"), data=data)
    manifest = export_run(run, tmp_path / "repo", ExportOptions(
        precisions=("fp32", "int8"), parity_frames=8, calibration_frames=8))
    assert manifest.training["validation_frames"].startswith(f"validation split of {data}")
    for engine in manifest.engines:
        # Ground truth is known: deltas are MPJPE (mm) and top-1 changes vs PyTorch.
        assert set(engine.accuracy_delta) == {"mpjpe_mm", "action_top1"}
        if engine.precision == "fp32":
            assert abs(engine.accuracy_delta["mpjpe_mm"]) < 1e-2
            assert engine.accuracy_delta["action_top1"] == 0.0
        assert engine.metrics == {"mpjpe_mm": 80.0, "pa_mpjpe_mm": 60.0, "action_top1": 0.2}


def test_cli_refuses_a_run_stopped_before_its_last_epoch(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # What Ctrl-C mid-training leaves: a resumable checkpoint of epoch 1 of 2, no metrics.
    from rigserve.training import train

    from tests.training.helpers import tiny_config
    from tests.training.rig import PREPROCESS, write_tiny_rig

    rig = write_tiny_rig(tmp_path / "rig", ("lidar",), frames=2)
    run = train(tiny_config(data=str(rig), out=str(tmp_path / "run"), preprocess=PREPROCESS,
                            **{"optim.epochs": 2}), until_epoch=1)
    assert main(["export", str(run), "--out", str(tmp_path / "repo"), "--no-progress"]) == 1
    assert_one_line_error(capsys.readouterr().err, "export",
                          "training stopped at epoch 1 of 2 (interrupted?); finish it with "
                          f"`rigserve train --data DIR --out {run} --resume` first")
    assert not (tmp_path / "repo").exists()
