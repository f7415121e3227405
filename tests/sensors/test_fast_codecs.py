"""The hand-written PNG and MAT v5 writers: what standard readers (Pillow, scipy) read back."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.io
from PIL import Image
from rigserve.sensors import formats
from rigserve.sensors.errors import FormatError
from rigserve.sensors.mat5 import encode_mat5
from rigserve.sensors.png16 import decode_png16, encode_png16


def _scipy_mat(variables: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, variables)
    return buf.getvalue()


def _pillow_read(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG"
        assert im.mode.startswith("I;16")
        return np.asarray(im).astype(np.uint16)


def test_mat5_bytes_equal_scipy_savemat_after_the_header_text() -> None:
    rng = np.random.default_rng(0)
    amp, phase = rng.uniform(0, 50, (3, 114, 10)), rng.uniform(-np.pi, np.pi, (3, 114, 10))
    amp[0, 1, 2], amp[1, 2, 3], amp[2, 3, 4] = np.nan, np.inf, -np.inf
    ours, ref = encode_mat5({"CSIamp": amp, "CSIphase": phase}), _scipy_mat(
        {"CSIamp": amp, "CSIphase": phase})
    assert len(ours) == len(ref)
    assert ours[116:] == ref[116:]  # 116 bytes of header text hold scipy's timestamp
    back = scipy.io.loadmat(io.BytesIO(ours))
    np.testing.assert_array_equal(back["CSIamp"], amp)  # inf/NaN kept exactly
    np.testing.assert_array_equal(back["CSIphase"], phase)


@pytest.mark.parametrize("name", ["x", "abcd", "abcde", "CSIamp"])
@pytest.mark.parametrize("shape", [(), (5,), (0, 3), (2, 3), (2, 3, 4, 5)])
def test_mat5_matches_scipy_for_short_names_scalars_vectors_and_empty(
        name: str, shape: tuple[int, ...]) -> None:
    arr = np.arange(float(np.prod(shape))).reshape(shape) - 2.5
    assert encode_mat5({name: arr})[116:] == _scipy_mat({name: arr})[116:]


def test_mat5_refuses_what_it_cannot_write_by_name() -> None:
    with pytest.raises(ValueError, match=r"CSIamp: .* real float64 arrays, got complex128"):
        encode_mat5({"CSIamp": np.zeros(3, dtype=complex)})
    with pytest.raises(ValueError, match=r"ASCII identifiers .* got '1x'"):
        encode_mat5({"1x": np.zeros(3)})


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (120, 160), (300, 300), (480, 640)])
@pytest.mark.parametrize("level", [0, 1, 6])
def test_png16_is_read_exactly_by_pillow_and_by_our_fast_path(
        shape: tuple[int, int], level: int) -> None:
    # 300x300 and 480x640 need several 64 KiB stored deflate blocks.
    img = np.random.default_rng(level).integers(0, 65536, shape, dtype=np.uint16)
    img.flat[0], img.flat[-1] = 0, 65535
    data = encode_png16(img, level)
    np.testing.assert_array_equal(_pillow_read(data), img)
    fast = decode_png16(data)
    assert fast is not None
    assert fast.dtype == np.uint16
    np.testing.assert_array_equal(fast, img)


def test_filtered_png_from_another_writer_is_left_to_pillow_and_still_reads() -> None:
    # Real MM-Fi depth frames come from other writers, usually with adaptive row filters.
    img = np.tile(np.arange(0, 6400, 40, dtype=np.uint16), (120, 1))
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=9)
    assert decode_png16(buf.getvalue()) is None  # filtered rows: not the fast path's job
    np.testing.assert_array_equal(formats.decode_frame("depth", buf.getvalue()), img)


def test_non_16_bit_png_is_not_taken_by_the_fast_path() -> None:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(buf, format="PNG")
    assert decode_png16(buf.getvalue()) is None
    with pytest.raises(FormatError, match=r"16-bit greyscale PNG.*'L' image 8x8"):
        formats.decode_frame("depth", buf.getvalue())


@pytest.mark.parametrize("cut", [20, 40, 300, -30])
def test_truncated_or_corrupt_png_from_our_writer_is_a_format_error(cut: int) -> None:
    data = encode_png16(np.full((24, 32), 1500, dtype=np.uint16))
    assert decode_png16(data[:cut]) is None
    with pytest.raises(FormatError, match="16-bit greyscale PNG"):
        formats.decode_frame("depth", data[:cut], name="frame001.png")
    corrupt = bytearray(data)
    corrupt[100] ^= 0xFF  # inside the image data: zlib's Adler-32 no longer matches
    assert decode_png16(bytes(corrupt)) is None


def test_png16_refuses_non_uint16_and_bad_levels() -> None:
    with pytest.raises(ValueError, match=r"\(H, W\) uint16 image, got shape \(4, 4\) int32"):
        encode_png16(np.zeros((4, 4), dtype=np.int32))
    with pytest.raises(ValueError, match=r"compress_level must be in 0\.\.9, got 12"):
        encode_png16(np.zeros((4, 4), dtype=np.uint16), 12)
    with pytest.raises(ValueError, match=r"compress_level must be an int in 0\.\.9, got 'x'"):
        formats.encode_frame("depth", np.zeros((8, 8), dtype=np.uint16), compress_level="x")
