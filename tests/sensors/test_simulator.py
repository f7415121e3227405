"""The synthetic rig writes MM-Fi's layout, deterministically, from a physically sane body."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from rigserve.sensors.dataset import MMFiDataset, MMFiIndex
from rigserve.sensors.formats import read_csi, read_frame, read_ground_truth
from rigserve.sensors.simulator import (
    ACTIONS,
    ENVIRONMENT_LAYOUTS,
    RenderContext,
    build_renderer,
    generate_sequence,
    parse_quality,
    select_sequences,
    simulate,
)
from rigserve.sensors.simulator.depth import DepthCamera
from rigserve.sensors.simulator.runner import usable_cpus
from rigserve.sensors.specs import ACTION_CODES, BONES, MODALITIES

from rigserve.cli import main as cli_main
from tests.core.cli_errors import assert_one_line_error

TINY = {"subjects": ["S01", "S31"], "actions": ["A01", "A20"], "frames": 5,
        "depth_size": (24, 32), "workers": 1}


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _decoded(root: Path) -> dict[str, np.ndarray]:
    """Every file's content as arrays (.mat headers carry a timestamp, so compare data)."""
    out: dict[str, np.ndarray] = {}
    by_folder = {spec.folder: name for name, spec in MODALITIES.items()}
    for rel in sorted(_tree(root)):
        path = root / rel
        if path.name == "ground_truth.npy":
            out[rel] = read_ground_truth(path)
        elif by_folder[path.parent.name] == "wifi":
            amp, phase = read_csi(path)
            assert phase is not None
            out[rel] = np.concatenate([amp, phase])
        else:
            out[rel] = read_frame(by_folder[path.parent.name], path)
    return out


def _assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        np.testing.assert_array_equal(value, b[key], err_msg=key)


@pytest.fixture(scope="module")
def tiny_rig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rig")
    simulate(root, **TINY)
    return root


def test_simulator_writes_exactly_the_mmfi_layout(tiny_rig: Path) -> None:
    expected = set()
    for env, subject in (("E01", "S01"), ("E04", "S31")):
        for action in ("A01", "A20"):
            seq = f"{env}/{subject}/{action}"
            expected.add(f"{seq}/ground_truth.npy")
            for spec in MODALITIES.values():
                expected |= {f"{seq}/{spec.folder}/frame{i:03d}{spec.ext}" for i in range(1, 6)}
    assert _tree(tiny_rig) == expected


def test_simulated_frames_read_back_with_the_mmfi_readers(tiny_rig: Path) -> None:
    seq = tiny_rig / "E04/S31/A20"
    gt = read_ground_truth(seq / "ground_truth.npy")
    assert gt.shape == (5, 17, 3)
    depth = read_frame("depth", seq / "depth/frame003.png")
    assert depth.shape == (24, 32)
    assert depth.dtype == np.uint16
    assert 300 < np.median(depth[depth > 0]) < 9000  # millimetres of a room a few metres deep
    lidar = read_frame("lidar", seq / "lidar/frame003.bin")
    assert lidar.ndim == 2
    assert lidar.shape[1] == 3
    assert len(lidar) > 50
    mmwave = read_frame("mmwave", seq / "mmwave/frame003.bin")
    assert mmwave.shape[1] == 5
    assert 3 <= len(mmwave) < 200
    amp, phase = read_csi(seq / "wifi-csi/frame003.mat")
    assert amp.shape == (3, 114, 10)
    assert phase is not None
    assert np.all(np.abs(phase) <= np.pi + 1e-9)
    kp = read_frame("rgb", seq / "rgb/frame003.npy")
    assert kp.shape == (17, 2)
    assert np.all((kp[:, 0] > 0) & (kp[:, 0] < 640) & (kp[:, 1] > 0) & (kp[:, 1] < 480))


def test_simulated_folder_is_indexed_by_the_dataset_reader(tiny_rig: Path) -> None:
    index = MMFiIndex.scan(tiny_rig)
    assert sorted(s.key for s in index.sequences) == [
        "E01/S01/A01", "E01/S01/A20", "E04/S31/A01", "E04/S31/A20"]
    data = MMFiDataset(tiny_rig, modalities=("depth", "lidar", "mmwave", "wifi"))
    assert len(data) == 20
    item = data[0]
    assert item["joints"].shape == (17, 3)
    assert item["action"] in (0, 19)


def test_same_seed_same_files_and_subsets_reproduce_them(tiny_rig: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    simulate(again, **TINY | {"workers": 2})
    _assert_same(_decoded(tiny_rig), _decoded(again))

    # One sequence, one modality on its own: the same frames as inside the bigger run.
    part = tmp_path / "part"
    simulate(part, subjects=["S31"], actions=["A20"], frames=5, depth_size=(24, 32),
             modalities=["lidar"], workers=1)
    full = _decoded(tiny_rig)
    for rel, arr in _decoded(part).items():
        np.testing.assert_array_equal(arr, full[rel], err_msg=rel)


def test_runs_are_byte_identical_whatever_the_worker_count(tiny_rig: Path, tmp_path: Path) -> None:
    # Our MAT writer's header carries no timestamp, so a rerun reproduces every file exactly.
    again = tmp_path / "bytes"
    simulate(again, **TINY | {"workers": 2})
    assert _tree(again) == _tree(tiny_rig)
    for rel in sorted(_tree(tiny_rig)):
        assert (again / rel).read_bytes() == (tiny_rig / rel).read_bytes(), rel


def test_a_room_is_ray_cast_once_and_shared_read_only_by_its_sequences() -> None:
    first = RenderContext(generate_sequence(0, "E02", "S11", "A01", 2), (24, 32))
    second = RenderContext(generate_sequence(0, "E02", "S12", "A05", 2), (24, 32))
    a, b = build_renderer("depth", first), build_renderer("depth", second)
    assert isinstance(a, DepthCamera)
    assert isinstance(b, DepthCamera)
    assert a.background is b.background
    with pytest.raises(ValueError, match="read-only"):
        a.background[0] = 0.0


def test_a_different_seed_gives_a_different_rig(tiny_rig: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    simulate(other, **TINY | {"subjects": ["S01"], "actions": ["A01"]}, seed=1)
    a = read_ground_truth(tiny_rig / "E01/S01/A01/ground_truth.npy")
    b = read_ground_truth(other / "E01/S01/A01/ground_truth.npy")
    assert np.abs(a - b).max() > 0.01


@pytest.mark.parametrize("action", ACTION_CODES)
def test_bone_lengths_stay_constant_within_a_sequence(action: str) -> None:
    seq = generate_sequence(0, "E02", "S12", action, 40)
    bones = np.array(BONES)
    lengths = np.linalg.norm(seq.joints[:, bones[:, 1]] - seq.joints[:, bones[:, 0]], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(lengths[0], lengths.shape), atol=1e-9)
    np.testing.assert_allclose(lengths[0], seq.subject.body.bone_lengths(), atol=1e-9)
    # Feet stay on or above the floor; the body moves (no frozen sequence).
    assert seq.joints[..., 2].min() > 0.0
    assert np.ptp(seq.joints, axis=0).max() > 0.1


def test_written_ground_truth_is_the_body_the_sensors_saw(tiny_rig: Path) -> None:
    gt = read_ground_truth(tiny_rig / "E01/S01/A01/ground_truth.npy")
    expected = generate_sequence(0, "E01", "S01", "A01", 5).joints
    np.testing.assert_allclose(gt, expected)
    bones = np.array(BONES)
    lengths = np.linalg.norm(gt[:, bones[:, 1]] - gt[:, bones[:, 0]], axis=-1)
    assert np.ptp(lengths, axis=0).max() < 1e-9


def _motion_features(joints: np.ndarray) -> np.ndarray:
    """Heading-free motion features of a sequence from ground truth alone."""
    right = joints[:, 1] - joints[:, 4]                      # left hip -> right hip
    yaw = np.arctan2(right[:, 1], right[:, 0]).mean()
    c, s = np.cos(-yaw), np.sin(-yaw)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    local = (joints - joints[:, :1]) @ rot.T                 # pelvis-relative, body-aligned
    height = np.ptp(joints[..., 2], axis=1).max()
    local = local / height
    return np.concatenate([local.mean(0).ravel(), local.std(0).ravel(),
                           [joints[:, 0, 2].std() / height]])


def test_actions_are_distinguishable_by_a_nearest_centroid_classifier() -> None:
    train, test = ("S02", "S13", "S24", "S35"), ("S07", "S18")
    def feats(subject: str, action: str) -> np.ndarray:
        env = select_sequences(None, [subject], [action])[0][0]
        return _motion_features(generate_sequence(3, env, subject, action, 60).joints)

    centroids = np.stack([np.mean([feats(s, a) for s in train], axis=0) for a in ACTION_CODES])
    correct = 0
    for s in test:
        for i, a in enumerate(ACTION_CODES):
            guess = np.argmin(np.linalg.norm(centroids - feats(s, a), axis=1))
            correct += int(guess == i)
    accuracy = correct / (len(test) * len(ACTION_CODES))
    assert accuracy > 0.7, f"held-out subjects' action accuracy {accuracy:.2f} (chance 0.04)"


def test_registries_cover_every_mmfi_action_and_environment() -> None:
    assert sorted(ACTIONS) == list(ACTION_CODES)
    assert {a.name for a in ACTIONS.values()} == {ACTIONS[c].name for c in ACTION_CODES}
    assert list(ENVIRONMENT_LAYOUTS) == ["E01", "E02", "E03", "E04"]


def test_bad_requests_name_the_value_and_what_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown subject\(s\) \['S41'\]; accepted: S01..S40"):
        simulate(tmp_path, subjects=["S41"])
    with pytest.raises(ValueError, match=r"no subject of \['S01'\] lives in environments"):
        simulate(tmp_path, subjects=["S01"], environments=["E02"])
    with pytest.raises(ValueError, match=r"modalities \['thermal'\] cannot be simulated; accepted"):
        simulate(tmp_path, subjects=["S01"], modalities=["thermal"])
    with pytest.raises(ValueError, match=r"wifi=1.5 is outside \[0, 1\]"):
        simulate(tmp_path, subjects=["S01"], quality={"wifi": 1.5})
    with pytest.raises(ValueError, match="expected NAME=VALUE"):
        parse_quality("wifi:0.3")
    with pytest.raises(ValueError, match="workers must be >= 1"):
        simulate(tmp_path, subjects=["S01"], workers=0)
    with pytest.raises(ValueError, match=r"unknown action 'A28'; registered: A01, A02, .*, A27"):
        generate_sequence(0, "E01", "S01", "A28", 5)
    with pytest.raises(ValueError, match="depth_size must be at least 8x8"):
        simulate(tmp_path, subjects=["S01"], depth_size=(4, 4))
    assert not any(tmp_path.iterdir())


def test_cli_simulate_writes_and_reports(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    rc = cli_main(["simulate", "--out", str(out), "--subjects", "S11", "--actions", "A05-A06",
                   "--frames", "3", "--depth-size", "16x20", "--quality", "wifi=0.2",
                   "--modalities", "depth,wifi", "--workers", "1"])
    assert rc == 0
    assert "wrote 2 sequences, 6 frames" in capsys.readouterr().out
    assert _tree(out) == {f"E02/S11/{a}/{p}" for a in ("A05", "A06") for p in
                          ["ground_truth.npy"] + [f"depth/frame{i:03d}.png" for i in (1, 2, 3)]
                          + [f"wifi-csi/frame{i:03d}.mat" for i in (1, 2, 3)]}
    assert read_frame("depth", out / "E02/S11/A05/depth/frame001.png").shape == (16, 20)
    assert cli_main(["simulate", "--out", str(out), "--subjects", "S01", "--environments",
                     "E03"]) == 2
    assert "lives in environments" in capsys.readouterr().err


def test_cli_simulate_out_that_is_a_file_is_one_line_not_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("a file, not a folder")
    tiny = ["--subjects", "S01", "--actions", "A01", "--frames", "1", "--depth-size", "8x8",
            "--modalities", "wifi", "--workers", "1"]
    assert cli_main(["simulate", "--out", str(notes), *tiny]) == 2
    assert_one_line_error(capsys.readouterr().err, "simulate",
                          f"output {notes} exists and is not a folder")
    # Below a file: the OS refuses the folder; still one line, exit 1.
    assert cli_main(["simulate", "--out", str(notes / "rig"), *tiny]) == 1
    assert_one_line_error(capsys.readouterr().err, "simulate", "Not a directory")
    assert notes.read_text() == "a file, not a folder"


@pytest.mark.parametrize(("cpu_max", "cap"), [
    ("max 100000\n", None), ("50000 100000\n", 1), ("150000 100000\n", 2), ("garbage", None)])
def test_default_worker_count_respects_the_affinity_mask_and_a_cgroup_quota(
        tmp_path: Path, cpu_max: str, cap: int | None) -> None:
    affinity = len(os.sched_getaffinity(0))
    quota_file = tmp_path / "cpu.max"
    quota_file.write_text(cpu_max)
    expected = affinity if cap is None else min(affinity, cap)
    assert usable_cpus(quota_file) == expected
    assert usable_cpus(tmp_path / "absent") == affinity
