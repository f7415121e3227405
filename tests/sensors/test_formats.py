"""MM-Fi frame formats: exact round trips, the layout's paths, and bad files named clearly."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image
from rigserve.sensors import formats
from rigserve.sensors.errors import FormatError, UnknownModality
from rigserve.sensors.specs import MODALITIES

from tests.sensors.mmfi_folder import random_frame


@pytest.mark.parametrize("modality", sorted(MODALITIES))
def test_every_modality_round_trips_exactly_through_its_file(tmp_path: Path, modality: str) -> None:
    rng = np.random.default_rng(7)
    frame = random_frame(modality, rng)
    path = formats.write_frame(modality, tmp_path / f"f{MODALITIES[modality].ext}", frame)
    back = formats.read_frame(modality, path)
    assert back.shape == frame.shape
    assert back.dtype == np.dtype(MODALITIES[modality].dtype)
    np.testing.assert_array_equal(back, frame)
    # The server decodes uploaded bytes with the same codec.
    np.testing.assert_array_equal(formats.decode_frame(modality, path.read_bytes()), frame)


def test_every_registered_modality_has_a_codec() -> None:
    assert {spec.ext for spec in MODALITIES.values()} <= set(formats.CODECS)


def test_depth_png_keeps_the_full_16_bit_range_at_480x640(tmp_path: Path) -> None:
    img = np.random.default_rng(0).integers(0, 65536, size=(480, 640), dtype=np.uint16)
    img[0, 0], img[0, 1] = 0, 65535
    path = formats.write_frame("depth", tmp_path / "frame001.png", img)
    with Image.open(path) as im:  # a real 16-bit greyscale PNG on disk, as MM-Fi's
        assert im.mode.startswith("I;16")
    np.testing.assert_array_equal(formats.read_frame("depth", path), img)
    packed = formats.encode_frame("depth", img, compress_level=6)
    np.testing.assert_array_equal(formats.decode_frame("depth", packed), img)


def test_wifi_round_trips_inf_nan_and_phase(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    amp, phase = rng.uniform(0, 50, (3, 114, 10)), rng.uniform(-np.pi, np.pi, (3, 114, 10))
    amp[0, 3, 2], amp[2, 100, 9] = np.inf, np.nan
    path = formats.write_frame("wifi", tmp_path / "frame001.mat", amp, phase=phase)
    raw = scipy.io.loadmat(path)  # MATLAB-readable with MM-Fi's key names
    assert {"CSIamp", "CSIphase"} <= set(raw)
    got_amp, got_phase = formats.read_csi(path)
    np.testing.assert_array_equal(got_amp, amp)
    assert got_phase is not None
    np.testing.assert_array_equal(got_phase, phase)


def test_wifi_file_with_amplitude_only_is_valid(tmp_path: Path) -> None:
    amp = np.random.default_rng(2).uniform(0, 50, (3, 114, 10))
    path = tmp_path / "frame001.mat"
    scipy.io.savemat(path, {"CSIamp": amp})
    np.testing.assert_array_equal(formats.read_frame("wifi", path), amp)
    assert formats.read_csi(path)[1] is None


def test_ground_truth_round_trips(tmp_path: Path) -> None:
    gt = np.random.default_rng(3).normal(size=(297, 17, 3))
    path = formats.write_ground_truth(tmp_path / "ground_truth.npy", gt)
    np.testing.assert_array_equal(formats.read_ground_truth(path), gt)


def test_frame_path_follows_the_mmfi_layout_numbered_from_one() -> None:
    path = formats.frame_path("/data", "E01", "S01", "A01", "wifi", 1)
    assert path == Path("/data/E01/S01/A01/wifi-csi/frame001.mat")
    assert formats.frame_path("/d", "E02", "S12", "A27", "depth", 297).name == "frame297.png"
    assert formats.parse_frame_index("frame297.png") == 297
    assert formats.parse_frame_index("ground_truth.npy") is None
    with pytest.raises(ValueError, match="start at 1, got 0"):
        formats.frame_filename("lidar", 0)


# ---- bad input ---------------------------------------------------------------------------

def test_truncated_bin_names_file_expected_multiple_and_byte_count(tmp_path: Path) -> None:
    path = tmp_path / "frame001.bin"
    path.write_bytes(np.zeros((10, 3)).tobytes()[:-4])  # 236 bytes, a cut-off write
    with pytest.raises(FormatError, match=r"frame001\.bin: expected a multiple of 24 bytes "
                                          r"\(N x 3 float64\), found 236 bytes"):
        formats.read_frame("lidar", path)
    with pytest.raises(FormatError, match="multiple of 40 bytes"):
        formats.read_frame("mmwave", path)


def test_unreadable_png_names_file_and_what_was_expected(tmp_path: Path) -> None:
    path = tmp_path / "frame001.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really an image")
    with pytest.raises(FormatError, match=r"frame001\.png: expected a 16-bit greyscale PNG "
                                          r"\(depth in mm\), found unreadable image data"):
        formats.read_frame("depth", path)


def test_truncated_png_is_a_format_error(tmp_path: Path) -> None:
    good = formats.encode_frame("depth", np.full((48, 64), 1234, dtype=np.uint16))
    path = tmp_path / "frame002.png"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(FormatError, match=r"frame002\.png: expected a 16-bit greyscale PNG"):
        formats.read_frame("depth", path)


def png_declaring(width: int, height: int) -> bytes:
    """A well-framed 16-bit greyscale PNG whose header declares a size its data lacks."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(payload, zlib.crc32(kind))
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def test_png_declaring_more_pixels_than_accepted_is_a_format_error() -> None:
    # Refused from the header, before Pillow (which would raise DecompressionBombError
    # here, and below 179 million pixels only warn and allocate the image).
    with pytest.raises(FormatError, match=r"expected a depth image of at most 16777216 "
                                          r"pixels, found a PNG header declaring "
                                          r"100000x100000 = 10000000000 pixels"):
        formats.decode_frame("depth", png_declaring(100_000, 100_000))


@pytest.mark.parametrize(("mode", "shape"), [("RGB", (4, 5, 3)), ("L", (4, 5))])
def test_8_bit_or_colour_png_is_refused_with_its_mode(mode: str, shape: tuple[int, ...]) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.zeros(shape, np.uint8)).save(buf, format="PNG")
    with pytest.raises(FormatError, match=rf"found a '{mode}' image 4x5 \(8-bit or colour"):
        formats.decode_frame("depth", buf.getvalue())


def test_mat_without_csiamp_names_file_and_the_keys_found(tmp_path: Path) -> None:
    path = tmp_path / "frame001.mat"
    scipy.io.savemat(path, {"CSIphase": np.zeros((3, 114, 10))})
    with pytest.raises(FormatError, match=r"frame001\.mat: expected a MATLAB file with key "
                                          r"'CSIamp' \(3, 114, 10\), found keys \['CSIphase'\]"):
        formats.read_frame("wifi", path)


def test_wrongly_shaped_csi_in_a_file_names_expected_and_found_shape(tmp_path: Path) -> None:
    path = tmp_path / "frame001.mat"
    scipy.io.savemat(path, {"CSIamp": np.zeros((3, 30, 10))})
    with pytest.raises(FormatError, match=r"frame001\.mat: expected \(3, 114, 10\) float CSI "
                                          r"amplitudes, found shape \(3, 30, 10\) float64"):
        formats.read_frame("wifi", path)


def test_wrongly_shaped_keypoints_in_a_file(tmp_path: Path) -> None:
    path = tmp_path / "frame001.npy"
    np.save(path, np.zeros((17, 3)))
    with pytest.raises(FormatError, match=r"expected \(17, 2\) float keypoints, "
                                          r"found shape \(17, 3\) float64"):
        formats.read_frame("rgb", path)


def test_writing_a_wrongly_shaped_array_names_the_target_file(tmp_path: Path) -> None:
    target = tmp_path / "frame001.bin"
    with pytest.raises(FormatError, match=r"frame001\.bin: expected \(N, 3\) float points, "
                                          r"found shape \(1024, 4\) float64"):
        formats.write_frame("lidar", target, np.zeros((1024, 4)))
    assert not target.exists()
    with pytest.raises(FormatError, match=r"expected \(H, W\) uint16 depth image in mm "
                                          r"\(dtype uint16\), found dtype float64"):
        formats.write_frame("depth", tmp_path / "d.png", np.zeros((4, 4)))


def test_ground_truth_with_wrong_shape_names_file(tmp_path: Path) -> None:
    path = tmp_path / "ground_truth.npy"
    np.save(path, np.zeros((10, 17, 2)))
    with pytest.raises(FormatError, match=r"ground_truth\.npy: expected a float array of "
                                          r"shape \(frames, 17, 3\) in metres, "
                                          r"found shape \(10, 17, 2\)"):
        formats.read_ground_truth(path)


def test_unknown_modality_and_unknown_write_option_list_what_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(UnknownModality, match="unknown modality 'radar'; known modalities: depth"):
        formats.read_frame("radar", b"")
    with pytest.raises(TypeError, match=r"take no option\(s\) \['phase'\]; accepted: none"):
        formats.write_frame("lidar", tmp_path / "x.bin", np.zeros((2, 3)), phase=1)


def test_empty_point_cloud_file_decodes_to_zero_points() -> None:
    assert formats.decode_frame("mmwave", b"").shape == (0, 5)
