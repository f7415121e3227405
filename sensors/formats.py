"""Readers and writers for the MM-Fi on-disk frame formats, byte for byte.

One codec per file extension (16-bit PNG, raw float64 ``.bin``, MATLAB ``.mat``, ``.npy``),
registered in :data:`CODECS`; a modality finds its codec through its spec's ``ext``. Every
reader works on bytes, so files on disk and files uploaded to the server decode the same
way, and every failure is a :class:`FormatError` naming the file, what was expected and
what was found.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rigserve.registry import Registry

from .errors import FormatError
from .mat5 import MatReadError, encode_mat5, read_mat5
from .png16 import decode_png16, encode_png16, png_size
from .specs import NUM_JOINTS, ModalitySpec, get_modality
from .validate import describe_expected, shape_matches

PathLike = str | os.PathLike[str]
Source = PathLike | bytes | bytearray | memoryview

Decoder = Callable[[bytes, str, ModalitySpec], np.ndarray]
Encoder = Callable[[np.ndarray, str, ModalitySpec, Mapping[str, Any]], bytes]


@dataclass(frozen=True)
class Codec:
    """How one file format turns bytes into a raw frame and back."""

    ext: str
    decode: Decoder
    encode: Encoder
    #: Keyword arguments ``write_frame`` accepts for this format.
    extras: tuple[str, ...] = ()


#: File extension -> codec.
CODECS: Registry[str, Codec] = Registry("file format", error=ValueError)


def register_codec(codec: Codec) -> Codec:
    return CODECS.add(codec.ext, codec)


def codec_for(modality: str) -> Codec:
    return CODECS[get_modality(modality).ext]


# ---- 16-bit PNG depth (millimetres) ----------------------------------------------------

_PNG16_MODES = ("I;16", "I;16L", "I;16B", "I")


#: Largest depth image decoded (4096 x 4096; MM-Fi's is 480 x 640). Checked on the header
#: before decoding: a PNG of a few bytes can declare 100 million pixels, and a decoder
#: allocates the whole image before it finds the data missing.
MAX_DEPTH_PIXELS = 1 << 24


def _decode_png(data: bytes, source: str, _spec: ModalitySpec) -> np.ndarray:
    size = png_size(data)
    if size is not None and size[0] * size[1] > MAX_DEPTH_PIXELS:
        raise FormatError(source, f"a depth image of at most {MAX_DEPTH_PIXELS} pixels",
                          f"a PNG header declaring {size[0]}x{size[1]} = "
                          f"{size[0] * size[1]} pixels")
    fast = decode_png16(data)  # the files our writer makes; anything else goes to Pillow
    return fast if fast is not None else _decode_png_pillow(data, source)


def _decode_png_pillow(data: bytes, source: str) -> np.ndarray:
    from PIL import Image

    want = "a 16-bit greyscale PNG (depth in mm)"
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "PNG":
                raise FormatError(source, want, f"a {im.format} image")
            if im.mode not in _PNG16_MODES:
                # 8-bit or colour frames hold no millimetre depth; guessing a scale would
                # silently feed the model wrong distances.
                raise FormatError(source, want,
                                  f"a {im.mode!r} image {im.size[1]}x{im.size[0]} "
                                  "(8-bit or colour; convert it to 16-bit millimetres first)")
            arr = np.asarray(im)
    except FormatError:
        raise
    # Pillow's unreadable / truncated data, and a header declaring more pixels than it
    # decodes (DecompressionBombError, which is none of the others).
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise FormatError(source, want, f"unreadable image data ({exc})") from exc
    if arr.dtype != np.uint16:
        if arr.size and (arr.min() < 0 or arr.max() > 0xFFFF):
            raise FormatError(source, want, f"values outside 0..65535 ({arr.dtype})")
        arr = arr.astype(np.uint16)
    return arr


def _encode_png(arr: np.ndarray, target: str, spec: ModalitySpec,
                extra: Mapping[str, Any]) -> bytes:
    if arr.dtype != np.uint16:
        raise FormatError(target, f"{describe_expected(spec)} (dtype uint16)", f"dtype {arr.dtype}")
    # Default level 0 (stored deflate blocks, still a standard PNG): noisy sensor depth
    # barely compresses (480x640 at level 1 is only ~20% smaller) while decoding is ~5x
    # faster and encoding far faster, and decode speed is the dataset's load path.
    level = extra.get("compress_level", 0)
    if not isinstance(level, int) or not 0 <= level <= 9:
        raise ValueError(f"compress_level must be an int in 0..9, got {level!r}")
    return encode_png16(arr, level)


# ---- raw float64 point clouds -----------------------------------------------------------

def _decode_bin(data: bytes, source: str, spec: ModalitySpec) -> np.ndarray:
    cols = spec.shape[1]
    row_bytes = 8 * cols
    if len(data) % row_bytes:
        raise FormatError(source, f"a multiple of {row_bytes} bytes (N x {cols} float64)",
                          f"{len(data)} bytes (a truncated file?)")
    # (N, cols), little-endian float64 as MM-Fi's np.fromfile reads it; copied to be writable.
    return np.frombuffer(data, dtype="<f8").reshape(-1, cols).copy()


def _encode_bin(arr: np.ndarray, _target: str, _spec: ModalitySpec,
                _extra: Mapping[str, Any]) -> bytes:
    return np.ascontiguousarray(arr, dtype="<f8").tobytes()


# ---- MATLAB CSI ---------------------------------------------------------------------------

def _load_mat(data: bytes, source: str) -> dict[str, np.ndarray | str]:
    want = "a MATLAB v5 file with key 'CSIamp' (3, 114, 10)"
    try:
        return read_mat5(data)
    except NotImplementedError as exc:  # v7.3 (HDF5) files
        raise FormatError(source, want, f"an unsupported MATLAB version ({exc})") from exc
    except MatReadError as exc:
        raise FormatError(source, want, f"unreadable MATLAB data ({exc})") from exc


def _mat_array(mat: Mapping[str, np.ndarray | str], key: str, source: str) -> np.ndarray:
    value = mat[key]
    if isinstance(value, str):  # a class read_mat5 does not decode: cell, struct, char...
        raise FormatError(source, f"numeric {key!r}", f"{key!r} of MATLAB class {value}")
    return np.asarray(value, dtype=np.float64)


def _decode_mat(data: bytes, source: str, _spec: ModalitySpec) -> np.ndarray:
    return _csi_amplitude(_load_mat(data, source), source)


def _csi_amplitude(mat: Mapping[str, np.ndarray | str], source: str) -> np.ndarray:
    if "CSIamp" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise FormatError(source, "a MATLAB file with key 'CSIamp' (3, 114, 10)",
                          f"keys {keys}")
    return _mat_array(mat, "CSIamp", source)


def _encode_mat(arr: np.ndarray, target: str, _spec: ModalitySpec,
                extra: Mapping[str, Any]) -> bytes:
    payload = {"CSIamp": np.asarray(arr, dtype=np.float64)}
    phase = extra.get("phase")
    if phase is not None:
        phase = np.asarray(phase, dtype=np.float64)
        if phase.shape != arr.shape:
            raise FormatError(target, f"CSIphase of shape {arr.shape} like CSIamp",
                              f"shape {phase.shape}")
        payload["CSIphase"] = phase
    # Same bytes as scipy.io.savemat after the header text, ~5x faster (see mat5).
    return encode_mat5(payload)


def read_csi(source: Source) -> tuple[np.ndarray, np.ndarray | None]:
    """Both CSI arrays of a ``.mat`` frame: ``(CSIamp, CSIphase or None)``."""
    data, name = _bytes_of(source, "wifi")
    mat = _load_mat(data, name)
    amp = _checked(_csi_amplitude(mat, name), name, get_modality("wifi"))
    phase = _mat_array(mat, "CSIphase", name) if "CSIphase" in mat else None
    if phase is not None and phase.shape != amp.shape:
        raise FormatError(name, f"CSIphase of shape {amp.shape}", f"shape {phase.shape}")
    return amp, phase


# ---- .npy keypoints / ground truth -------------------------------------------------------

def _load_npy(data: bytes, source: str, want: str) -> np.ndarray:
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FormatError(source, want, f"unreadable .npy data ({exc})") from exc
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise FormatError(source, want, f"a {type(arr).__name__} of dtype "
                          f"{getattr(arr, 'dtype', '?')}")
    return arr


def _decode_npy(data: bytes, source: str, spec: ModalitySpec) -> np.ndarray:
    return _load_npy(data, source, f"a .npy file holding {describe_expected(spec)}")


def _encode_npy(arr: np.ndarray, _target: str, _spec: ModalitySpec,
                _extra: Mapping[str, Any]) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr, dtype=np.float64), allow_pickle=False)
    return buf.getvalue()


register_codec(Codec(".png", _decode_png, _encode_png, extras=("compress_level",)))
register_codec(Codec(".bin", _decode_bin, _encode_bin))
register_codec(Codec(".mat", _decode_mat, _encode_mat, extras=("phase",)))
register_codec(Codec(".npy", _decode_npy, _encode_npy))


# ---- public API -----------------------------------------------------------------------------

def _bytes_of(source: Source, modality: str) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), f"<{modality} upload>"
    path = Path(source)
    return path.read_bytes(), str(path)


def _checked(arr: np.ndarray, name: str, spec: ModalitySpec) -> np.ndarray:
    if not shape_matches(spec, arr.shape):
        raise FormatError(name, describe_expected(spec), f"shape {arr.shape} {arr.dtype}")
    return arr


def decode_frame(modality: str, data: bytes | bytearray | memoryview,
                 name: str | None = None) -> np.ndarray:
    """Decode one frame file's bytes (as uploaded to the server) into its raw array."""
    spec = get_modality(modality)
    source = name or f"<{modality} upload>"
    return _checked(codec_for(modality).decode(bytes(data), source, spec), source, spec)


def read_frame(modality: str, source: Source) -> np.ndarray:
    """Read one raw frame from a path or from file bytes (shapes in specs.MODALITIES)."""
    data, name = _bytes_of(source, modality)
    return decode_frame(modality, data, name)


def encode_frame(modality: str, array: np.ndarray, *, target: str = "<memory>",
                 **extra: Any) -> bytes:
    """The file bytes :func:`write_frame` would write (what an edge rig uploads)."""
    spec = get_modality(modality)
    codec = codec_for(modality)
    unknown = sorted(set(extra) - set(codec.extras))
    if unknown:
        raise TypeError(f"{modality} frames take no option(s) {unknown}; "
                        f"accepted: {list(codec.extras) or 'none'}")
    arr = np.asarray(array)
    if arr.dtype.kind not in "fiu":
        raise FormatError(target, describe_expected(spec), f"dtype {arr.dtype}")
    _checked(arr, target, spec)
    return codec.encode(arr, target, spec, extra)


def write_frame(modality: str, path: PathLike, array: np.ndarray, **extra: Any) -> Path:
    """Write one frame in its MM-Fi format (parents created); wifi takes ``phase=``."""
    path = Path(path)
    data = encode_frame(modality, array, target=str(path), **extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


_GT_EXPECTED = f"a float array of shape (frames, {NUM_JOINTS}, 3) in metres"


def _check_ground_truth(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.ndim != 3 or arr.shape[1:] != (NUM_JOINTS, 3) or arr.dtype.kind not in "fiu":
        raise FormatError(name, _GT_EXPECTED, f"shape {arr.shape} {arr.dtype}")
    return arr


def read_ground_truth(source: Source) -> np.ndarray:
    """``ground_truth.npy``: (frames, 17, 3) joint positions in metres."""
    data, name = _bytes_of(source, "ground_truth")
    return _check_ground_truth(_load_npy(data, name, _GT_EXPECTED), name)


def write_ground_truth(path: PathLike, array: np.ndarray) -> Path:
    path = Path(path)
    arr = _check_ground_truth(np.asarray(array), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        np.save(fh, arr.astype(np.float64), allow_pickle=False)
    return path


# ---- the MM-Fi layout -------------------------------------------------------------------

GROUND_TRUTH_FILE = "ground_truth.npy"
_FRAME_RE = re.compile(r"^frame(\d+)(\.[A-Za-z0-9]+)$")


def frame_filename(modality: str, index: int) -> str:
    """``frame001.png``: MM-Fi numbers frames from 1, three digits."""
    if index < 1:
        raise ValueError(f"MM-Fi frame indices start at 1, got {index}")
    return f"frame{index:03d}{get_modality(modality).ext}"


def parse_frame_index(filename: str) -> int | None:
    """1-based frame index of ``frameNNN.ext``, or None for any other file name."""
    m = _FRAME_RE.match(filename)
    return int(m.group(1)) if m else None


def sequence_dir(root: PathLike, env: str, subject: str, action: str) -> Path:
    return Path(root) / env / subject / action


def frame_path(  # noqa: PLR0917 - positional order pinned in docs/contracts.md
    root: PathLike, env: str, subject: str, action: str, modality: str, index: int,
) -> Path:
    """``ROOT/E01/S01/A01/wifi-csi/frame001.mat``."""
    folder = get_modality(modality).folder
    return sequence_dir(root, env, subject, action) / folder / frame_filename(modality, index)


def ground_truth_path(root: PathLike, env: str, subject: str, action: str) -> Path:
    return sequence_dir(root, env, subject, action) / GROUND_TRUTH_FILE
