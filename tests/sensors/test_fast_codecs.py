"""The hand-written PNG and MAT v5 codecs: what standard readers (Pillow, scipy) read back,
and what our readers make of files other tools wrote, or of corrupted ones."""

from __future__ import annotations

import contextlib
import io
import random
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
import scipy.io
from PIL import Image
from rigserve.sensors import formats, png16
from rigserve.sensors.errors import FormatError
from rigserve.sensors.mat5 import MatReadError, encode_mat5, read_mat5
from rigserve.sensors.png16 import decode_png16, encode_png16


def _scipy_mat(variables: dict[str, np.ndarray], compress: bool = False) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, variables, do_compression=compress)
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


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(("dtype", "shape"), [
    ("float64", (3, 114, 10)), ("float32", (2, 3)), ("int8", (4, 1)), ("uint16", (5,)),
    ("int64", (2, 2, 2)), ("complex128", (3, 2)), ("float64", (0, 3)), ("float64", ())])
def test_read_mat5_reads_what_scipy_reads(compress: bool, dtype: str,
                                          shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    arr = (rng.uniform(-100, 100, shape) * (1 + 1j if dtype == "complex128" else 1)
           ).astype(dtype)
    data = _scipy_mat({"CSIamp": arr, "x": arr, "label": np.array("text")}, compress)
    ours, ref = read_mat5(data), scipy.io.loadmat(io.BytesIO(data))
    for name in ("CSIamp", "x"):
        assert ours[name].dtype == ref[name].dtype
        np.testing.assert_array_equal(ours[name], ref[name])
        assert ours[name].flags.writeable
    assert ours["label"] == "char"  # other classes are named, not decoded


def _mat_by_hand(order: str, mi_code: int, values: bytes, dims: tuple[int, ...]) -> bytes:
    """One double-class variable 'v' whose data is stored as miType ``mi_code``, in the
    byte order ``order`` ('<' or '>'), as MATLAB writes integral doubles compactly."""
    def element(mi: int, payload: bytes) -> bytes:
        return struct.pack(order + "II", mi, len(payload)) + payload + b"\0" * (-len(payload) % 8)

    body = (element(6, struct.pack(order + "II", 6, 0))  # array flags: mxDOUBLE_CLASS
            + element(5, struct.pack(order + f"{len(dims)}i", *dims))
            + struct.pack(order + "I", (1 << 16) | 1) + b"v\0\0\0"  # small element name
            + element(mi_code, values))
    header = b"MATLAB 5.0 MAT-file".ljust(116) + b"\0" * 8 + struct.pack(order + "H", 0x0100)
    return header + (b"IM" if order == "<" else b"MI") + element(14, body)


@pytest.mark.parametrize("order", ["<", ">"])
def test_read_mat5_reads_big_endian_files_and_compact_storage_types(order: str) -> None:
    data = _mat_by_hand(order, 2, bytes([1, 2, 3, 250, 5, 6]), (2, 3))  # miUINT8
    ours, ref = read_mat5(data)["v"], scipy.io.loadmat(io.BytesIO(data))["v"]
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_array_equal(ours, [[1, 3, 5], [2, 250, 6]])  # column-major
    values = np.arange(6, dtype=order + "f8").tobytes()
    np.testing.assert_array_equal(read_mat5(_mat_by_hand(order, 9, values, (3, 2)))["v"],
                                  [[0, 3], [1, 4], [2, 5]])


CSI_FILE = encode_mat5({"CSIamp": np.full((3, 114, 10), 7.5)})


def test_a_data_type_code_out_of_the_table_is_an_error_not_a_crash() -> None:
    # One flipped byte in the data element's type: scipy's loadmat indexes a C table
    # with it and the process dies of a segmentation fault.
    data = bytearray(CSI_FILE)
    data[193] = 0xEA  # miDOUBLE (9) becomes 59913
    with pytest.raises(MatReadError, match=r"CSIamp: numeric data of unknown type code 59913"):
        read_mat5(bytes(data))
    with pytest.raises(FormatError, match=r"expected a MATLAB v5 file with key 'CSIamp' "
                                          r"\(3, 114, 10\), found unreadable MATLAB data"):
        formats.decode_frame("wifi", bytes(data))


@pytest.mark.parametrize(("data", "message"), [
    (CSI_FILE[:100], r"100 bytes, shorter than the 128-byte MAT-file header"),
    (CSI_FILE[:126] + b"XX" + CSI_FILE[128:], r"no MAT v5 endian indicator"),
    (CSI_FILE[:-8], r"a data element of \d+ bytes at byte 128 runs past the end"),
    (CSI_FILE[:128] + struct.pack("<II", 15, 4) + b"junk", r"not valid zlib data"),
    (CSI_FILE[:128] + struct.pack("<II", 15, 1032) + b"x\x9c" + b"\xff" * 1030,
     r"not valid zlib data"),
])
def test_corrupt_mat_files_say_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(MatReadError, match=message):
        read_mat5(data)


def test_a_v7_3_file_is_named_as_an_unsupported_version() -> None:
    data = CSI_FILE[:124] + struct.pack("<H", 0x0200) + CSI_FILE[126:]
    with pytest.raises(FormatError, match=r"found an unsupported MATLAB version \(MAT-file "
                                          r"version 0x0200; only level 5"):
        formats.decode_frame("wifi", data)


def test_a_compressed_variable_may_not_inflate_past_the_limit() -> None:
    import zlib

    from rigserve.sensors import mat5

    bomb = zlib.compress(b"\0" * (mat5.MAX_INFLATED_BYTES + 8), 9)
    data = CSI_FILE[:128] + struct.pack("<II", 15, len(bomb)) + bomb
    with pytest.raises(MatReadError, match=r"inflates past 67108864 bytes"):
        read_mat5(data)


def test_mutated_csi_files_only_ever_raise_mat_read_errors() -> None:
    rng = random.Random(0)
    compressed = _scipy_mat({"CSIamp": np.full((3, 114, 10), 2.5)}, compress=True)
    for _ in range(1500):
        data = bytearray(rng.choice((CSI_FILE, compressed)))
        if rng.random() < 0.3:
            del data[rng.randrange(len(data)):]
        for _ in range(rng.randint(1, 4)):  # mostly the header and element tags
            data[rng.randrange(min(len(data), 260))] = rng.randrange(256)
        with contextlib.suppress(MatReadError, NotImplementedError):
            read_mat5(bytes(data))  # anything else fails the test


def _png(height: int, width: int, idat: bytes) -> bytes:
    """A 16-bit greyscale PNG with the given header and IDAT payload, framed correctly."""
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return b"".join([png16.SIGNATURE, *png16._chunk(b"IHDR", [ihdr]),
                     *png16._chunk(b"IDAT", [idat]), *png16._chunk(b"IEND", [])])


def test_a_png_header_declaring_too_many_pixels_is_refused_before_decoding() -> None:
    # 60 bytes that declare 12000 x 12000: decoders allocate the image before they find
    # the data missing (Pillow's own bomb limit only warns below 179 million pixels).
    data = _png(12000, 12000, zlib.compress(b"\0" * 64))
    assert png16.png_size(data) == (12000, 12000)
    with pytest.raises(FormatError, match=r"at most 16777216 pixels, found a PNG header "
                                          r"declaring 12000x12000 = 144000000 pixels"):
        formats.decode_frame("depth", data)


def test_an_idat_that_inflates_far_past_its_image_is_not_inflated_by_the_fast_path() -> None:
    # 480x640 declared; the IDAT inflates to 64 MiB of zero rows (a 64 KiB upload).
    bomb = zlib.compressobj(9)
    idat = b"".join([*(bomb.compress(b"\0" * (1 << 20)) for _ in range(64)), bomb.flush()])
    data = _png(480, 640, idat)
    tracemalloc.start()
    try:
        assert png16.decode_png16(data) is None  # too much data: not one of our files
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20  # the image's 615 KB and the IDAT, never the 64 MiB
