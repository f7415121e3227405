"""`rigserve train`'s parser: its help names every preset, building it loads no torch, and
misuse is one line naming the bad value and what is accepted."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from rigserve.training.config import PRESETS

from rigserve.cli import main
from tests.core.cli_errors import assert_one_line_error


def test_train_help_lists_every_named_preset():
    out = subprocess.run([sys.executable, "-m", "rigserve", "train", "--help"],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "COLUMNS": "200"}).stdout
    # The option's own help, between it and the next option (not the usage line).
    listed = out.split("  --preset PRESET", 1)[1].split("  --epochs", 1)[0]
    missing = [name for name in PRESETS if name not in listed.replace(",", " ").split()]
    assert not missing, f"`rigserve train --help` does not list presets {missing}:\n{listed}"


def test_the_train_command_and_the_whole_parser_load_without_torch():
    code = ("import sys, rigserve.cli.train; from rigserve.cli import build_parser; "
            "build_parser(); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'torch'); "
            "sys.exit(f'torch imported: {bad[:3]}' if bad else 0)")
    subprocess.run([sys.executable, "-c", code], check=True)


def _tiny_rig(root):
    from rigserve.sensors.simulator import simulate

    simulate(root, subjects=["S01", "S11"], actions=["A01"], frames=2, depth_size=(8, 8),
             modalities=["lidar", "wifi"], workers=1)
    return root


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--epochs", "0"], 2, "optim.epochs=0; accepted: an integer >= 1"),
    (["--epochs", "-2"], 2, "optim.epochs=-2; accepted: an integer >= 1"),
    (["--set", "optim.batch_size=0"], 2, "optim.batch_size=0; accepted: an integer >= 1"),
    (["--set", "optim.lr=-1"], 2, "optim.lr=-1.0; accepted: a learning rate > 0"),
    (["--strategy", "distill"], 2, "unknown strategy 'distill'; accepted: feature_kd, "),
    (["--preset", "fast"], 2, "unknown preset 'fast'; known presets: pta, "),
    (["--set", "optim.epochs"], 2, "override 'optim.epochs': expected key=value"),
    (["--modalities", "thermal"], 1, "modalities ['thermal'] requested but the data folder"),
])
def test_train_misuse_is_one_line_naming_the_value_and_what_is_accepted(
        tmp_path, capsys, argv, code, message):
    data = _tiny_rig(tmp_path / "data")
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"),
                 "--no-progress", *argv]) == code
    assert_one_line_error(capsys.readouterr().err, "train", message)
    assert not (tmp_path / "run").exists()


def test_train_refuses_folders_that_are_not_what_it_needs_in_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a folder")
    (tmp_path / "photos" / "2024").mkdir(parents=True)
    (tmp_path / "bad.yaml").write_text("optim: [1\n")
    data = _tiny_rig(tmp_path / "data")
    cases = [
        (["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r")], "is not a directory"),
        (["--data", str(tmp_path / "photos"), "--out", str(tmp_path / "r")],
         "expected the MM-Fi layout ROOT/E0x/Sxx/Axx/<modality>/frameNNN.ext"),
        (["--data", str(data), "--out", str(tmp_path / "notes.txt")],
         "notes.txt exists and is not a folder"),
        (["--data", str(data), "--out", str(tmp_path / "r"),
          "--config", str(tmp_path / "bad.yaml")], "bad.yaml: not a YAML config"),
    ]
    for argv, message in cases:
        assert main(["train", "--no-progress", *argv]) != 0
        assert_one_line_error(capsys.readouterr().err, "train", message)
    assert not (tmp_path / "r").exists()
