"""The dataset reader on folders with real MM-Fi naming, written by the sensors writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image
from rigserve.sensors.csi import clean_csi
from rigserve.sensors.dataset import MMFiDataset, MMFiIndex
from rigserve.sensors.errors import FormatError
from rigserve.sensors.formats import frame_path, read_csi, read_frame, write_frame
from rigserve.sensors.png16 import decode_png16
from rigserve.sensors.preprocess import PreprocessSpec, preprocess_frame

from tests.sensors.mmfi_folder import write_folder


@pytest.fixture(scope="module")
def mmfi_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """S01 A01/A02 (E01) and S11 A01 (E02), 4 frames each, with the awkward real-data cases."""
    root = tmp_path_factory.mktemp("mmfi")
    gts = write_folder(root, ["S01"], ["A01", "A02"], frames=4, seed=0)
    gts |= write_folder(root, ["S11"], ["A01"], frames=4, seed=1)
    rng = np.random.default_rng(5)
    # Native 480x640 depth in one frame.
    write_frame("depth", frame_path(root, "E01", "S01", "A01", "depth", 2),
                rng.integers(400, 4000, (480, 640), dtype=np.uint16))
    # CSI with inf/NaN, and a .mat holding CSIamp only (no CSIphase).
    amp = rng.uniform(5, 40, (3, 114, 10))
    amp[0, 7, 1], amp[2, 50, 8] = np.inf, np.nan
    write_frame("wifi", frame_path(root, "E01", "S01", "A01", "wifi", 3), amp,
                phase=np.zeros_like(amp))
    scipy.io.savemat(frame_path(root, "E01", "S01", "A01", "wifi", 4), {"CSIamp": amp * 2})
    # An empty lidar file: the official loader skips that frame.
    frame_path(root, "E01", "S01", "A02", "lidar", 3).write_bytes(b"")
    # Files the scan must ignore.
    (root / "E01" / "S01" / "A01" / "notes.txt").write_text("x")
    (root / "E01" / "S01" / "A01" / "lidar" / "frame001.bin.tmp").write_bytes(b"12")
    return root, gts


def test_scan_finds_sequences_modalities_and_frames(mmfi_root: tuple[Path, dict]) -> None:
    root, _ = mmfi_root
    index = MMFiIndex.scan(root)
    assert [s.key for s in index] == ["E01/S01/A01", "E01/S01/A02", "E02/S11/A01"]
    assert index.modalities == ("depth", "lidar", "mmwave", "wifi")
    assert index.environments == ("E01", "E02")
    seq = index["E01/S01/A02"]
    assert seq.frames["lidar"] == (1, 2, 4)
    assert seq.empty["lidar"] == (3,)
    assert seq.gt_frames == 4
    assert seq.action_index == 1
    with pytest.raises(KeyError, match=r"no sequence 'E01/S09/A01' under .* look like"):
        index["E01/S09/A01"]


def test_dataset_items_are_model_ready_with_joints_and_action(mmfi_root: tuple[Path, dict]
                                                              ) -> None:
    root, gts = mmfi_root
    ds = MMFiDataset(root, None, ("depth", "lidar", "wifi"), PreprocessSpec(lidar_points=64))
    assert len(ds) == 4 + 3 + 4  # one lidar frame of E01/S01/A02 is empty
    assert ds.skipped == {"empty_or_missing_file": 1}
    item = ds[1]  # E01/S01/A01 frame 2: the 480x640 depth
    assert item["key"] == ("E01", "S01", "A01", 2)
    assert item["depth"].shape == (1, 48, 64)
    assert item["depth"].min() >= 0.4
    assert item["depth"].max() <= 4.0
    assert item["lidar"].shape == (64, 4)
    np.testing.assert_allclose(item["joints"], gts["E01/S01/A01"][1], rtol=1e-6)
    assert item["joints"].dtype == np.float32
    assert item["action"] == 0
    assert [k[3] for k in ds.keys[4:7]] == [1, 2, 4]  # frame 3 skipped
    assert ds[-1]["key"] == ("E02", "S11", "A01", 4)
    with pytest.raises(IndexError, match="frame 11 out of range for a dataset of 11 frames"):
        ds[11]


def test_csi_with_inf_nan_and_amplitude_only_mat_load_cleaned(mmfi_root: tuple[Path, dict]
                                                              ) -> None:
    root, _ = mmfi_root
    ds = MMFiDataset(root, ["E01/S01/A01"], ("wifi",))
    inf_frame, amp_only = ds[2]["wifi"], ds[3]["wifi"]
    assert np.isfinite(inf_frame).all()
    assert inf_frame.min() == 0.0
    assert inf_frame.max() == pytest.approx(1.0)
    # Min-max makes the x2 copy clean to the same frame.
    np.testing.assert_allclose(amp_only, inf_frame, atol=1e-6)


def test_to_arrays_stacks_what_items_hold(mmfi_root: tuple[Path, dict]) -> None:
    root, _ = mmfi_root
    ds = MMFiDataset(root, ["E01/S01/A02", "E02/S11/A01"], ("lidar", "mmwave", "depth"))
    arrays = ds.to_arrays(workers=2, chunk=3)  # several chunks
    assert arrays["lidar"].shape == (7, 256, 4)
    assert arrays["mmwave"].shape == (7, 64, 6)
    assert arrays["depth"].shape == (7, 1, 48, 64)
    assert arrays["joints"].shape == (7, 17, 3)
    np.testing.assert_array_equal(arrays["action"], [1] * 3 + [0] * 4)
    np.testing.assert_array_equal(arrays["sequence"], [0] * 3 + [1] * 4)
    for i in range(len(ds)):
        for key in ("lidar", "mmwave", "depth", "joints"):
            np.testing.assert_array_equal(arrays[key][i], ds[i][key])
        assert arrays["frame"][i] == ds[i]["key"][3]


def test_cache_returns_the_same_item_and_no_cache_rereads(mmfi_root: tuple[Path, dict]) -> None:
    root, _ = mmfi_root
    cached = MMFiDataset(root, ["E02/S11/A01"], ("lidar",))
    assert cached[0] is cached[0]
    uncached = MMFiDataset(root, ["E02/S11/A01"], ("lidar",), cache=False)
    assert uncached[0] is not uncached[0]
    np.testing.assert_array_equal(uncached[0]["lidar"], cached[0]["lidar"])


def test_modality_missing_from_a_sequence_is_named(tmp_path: Path) -> None:
    write_folder(tmp_path, ["S01"], ["A05"], frames=1, modalities=("lidar",))
    with pytest.raises(FormatError, match=r"A05: expected folders for lidar, wifi, "
                                          r"found no wifi-csi folder"):
        MMFiDataset(tmp_path, None, ("lidar", "wifi"))


def test_scan_of_a_folder_without_the_layout_says_what_it_expected(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with pytest.raises(FormatError, match=r"expected the MM-Fi layout ROOT/E0x/Sxx/Axx"):
        MMFiIndex.scan(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        MMFiIndex.scan(tmp_path / "missing")


def test_preprocessing_in_the_dataset_is_the_shared_one(mmfi_root: tuple[Path, dict]) -> None:
    root, _ = mmfi_root
    from rigserve.sensors.formats import read_frame

    ds = MMFiDataset(root, ["E01/S01/A01"], ("wifi",))
    raw = read_frame("wifi", frame_path(root, "E01", "S01", "A01", "wifi", 1))
    np.testing.assert_array_equal(ds[0]["wifi"], preprocess_frame("wifi", raw))
    np.testing.assert_array_equal(ds[0]["wifi"], clean_csi(raw))


def _rewrite_with_other_tools(root: Path) -> None:
    """Re-encode every depth and CSI file as other tools write them: Pillow at zlib level 6
    (adaptive row filters, as OpenCV/MATLAB-written MM-Fi PNGs use) and scipy.io.savemat."""
    for png in sorted(root.rglob("depth/frame*.png")):
        img = read_frame("depth", png)
        Image.fromarray(img).save(png, format="PNG", compress_level=6)
    for mat in sorted(root.rglob("wifi-csi/frame*.mat")):
        amp, phase = read_csi(mat)
        scipy.io.savemat(mat, {"CSIamp": amp} | ({} if phase is None else {"CSIphase": phase}))


def test_files_written_by_other_tools_read_the_same_as_ours(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for root in (ours, theirs):
        write_folder(root, ["S01"], ["A01"], frames=3, seed=4, depth_hw=(120, 160))
    _rewrite_with_other_tools(theirs)
    pngs = sorted(theirs.rglob("depth/frame*.png"))
    # Filtered rows: these files take the Pillow path, ours the fast one.
    assert all(decode_png16(p.read_bytes()) is None for p in pngs)
    assert all(decode_png16(p.read_bytes()) is not None for p in ours.rglob("depth/*.png"))
    a = MMFiDataset(ours, modalities=("depth", "wifi"), cache=False).to_arrays()
    b = MMFiDataset(theirs, modalities=("depth", "wifi"), cache=False).to_arrays()
    for key in ("depth", "wifi", "joints"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
