import socket
import subprocess
import sys

import pytest
from rigserve.training import load_run
from rigserve.training.checkpoint import read_checkpoint

from tests.training.rig import write_tiny_rig


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_process_gloo_run_trains_and_writes_one_run(tmp_path):
    rig = write_tiny_rig(tmp_path / "rig", frames=4)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
           "-m", "rigserve", "train", "--data", str(rig), "--out", str(out), "--epochs", "3",
           "--no-progress", "--set", "model.dim=16", "--set", "model.width=4",
           "--set", "optim.batch_size=8",
           "--set", "preprocess={depth_size: [24, 32], lidar_points: 32, mmwave_points: 16}"]
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = load_run(out)
    assert len(loaded.metrics) == 7
    losses = [row["loss"] for row in read_checkpoint(out)["history"]["losses"]]
    assert len(losses) == 3
    assert losses[-1] < losses[0]
