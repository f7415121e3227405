"""`rigserve train`'s parser: its help names every preset, and building it loads no torch."""

from __future__ import annotations

import os
import subprocess
import sys

from rigserve.training.config import PRESETS


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
