"""The rig endpoint: ``POST /v1/rigs/{rig_id}/infer`` with whatever frames the rig has.

Frames arrive as JSON or as MM-Fi files in multipart form data::

    {"frames": {"depth": [[...], ...],                              # nested lists
                "lidar": {"b64": "...", "dtype": "float64", "shape": [300, 3]},  # raw bytes
                "wifi": {"file_b64": "..."}}}                       # a whole MM-Fi file
    curl -F depth=@frame001.png -F lidar=@frame001.bin -F wifi=@frame001.mat URL

Form fields may use the modality name or its MM-Fi folder (``wifi-csi``). The router
decides which sensors are online; the answer says which were used and why others were not.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from python_multipart.multipart import parse_options_header
from rigserve.sensors.specs import MODALITIES, SENSOR_MODALITIES
from rigserve.server import jsonio
from rigserve.server.errors import InvalidInput, some_names
from rigserve.server.rest.deps import get_service
from rigserve.server.router import RawFrame
from rigserve.server.service import RigPrediction
from rigserve.server.tensors import array_from_le_bytes
from starlette.datastructures import UploadFile

router = APIRouter(prefix="/v1", tags=["rig"])
PROTOCOL = "rest"

#: dtypes a base64 frame may declare (little-endian on the wire).
B64_DTYPES = ("uint8", "uint16", "int16", "int32", "int64", "float32", "float64")
_ALIASES = {spec.folder: name for name, spec in MODALITIES.items()}
_MAX_ID = 128


def _modality(field: str) -> str:
    return _ALIASES.get(field, field)


def _put(frames: dict[str, RawFrame], fields: dict[str, str], field: str,
         frame: RawFrame) -> None:
    """Add one sensor's frame, refusing a second one for the same sensor under either of
    its names (``wifi`` and ``wifi-csi``): keeping one would silently lose the other."""
    modality = _modality(field)
    if modality in fields:
        raise InvalidInput(f"modality {modality!r} is sent twice (as {fields[modality]!r} and "
                           f"{field!r}); send one frame per sensor")
    fields[modality] = field
    frames[modality] = frame


def _stale_names(stale: Any) -> list[str]:
    """The client's stale sensors as modality names; a name no sensor has would leave the
    sensor it meant in use, so it is refused like an unknown frame."""
    if not isinstance(stale, list) or not all(isinstance(s, str) for s in stale):
        raise InvalidInput("'stale' must be a list of modality names")
    names = [_modality(s) for s in stale]
    unknown = sorted({s for s, m in zip(stale, names, strict=True)
                      if m not in SENSOR_MODALITIES})
    if unknown:
        raise InvalidInput(f"'stale' names unknown modality {some_names(unknown)}; accepted: "
                           f"{', '.join(SENSOR_MODALITIES)} or their MM-Fi folder names")
    return names


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{what} is not valid base64: {exc}") from exc


def _b64_array(name: str, obj: dict[str, Any]) -> np.ndarray:
    data = _b64(obj["b64"], f"{name}.b64")
    dtype, shape = obj.get("dtype"), obj.get("shape")
    if dtype not in B64_DTYPES:
        raise InvalidInput(f"{name}.dtype {dtype!r} is not accepted; use one of "
                           f"{', '.join(B64_DTYPES)}")
    # JSON true / false are Python ints too, but not dimensions.
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool)
                                              for d in shape):
        raise InvalidInput(f"{name}.shape must be a list of non-negative integers, got {shape!r}")
    return array_from_le_bytes(data, np.dtype(dtype), shape, what=name, type_name=dtype)


def _json_frame(name: str, value: Any) -> RawFrame:
    if isinstance(value, list):
        return _nested(name, value, None)
    if isinstance(value, dict):
        if "b64" in value:
            return _b64_array(name, value)
        if "file_b64" in value:
            return _b64(value["file_b64"], f"{name}.file_b64")
        if "data" in value:
            return _nested(name, value["data"], value.get("dtype"))
    raise InvalidInput(f"frame {name!r}: expected nested lists, {{'data': [...]}}, "
                       "{'b64', 'dtype', 'shape'} or {'file_b64'}")


def _nested(name: str, data: Any, dtype: str | None) -> np.ndarray:
    if dtype is not None and dtype not in B64_DTYPES:
        raise InvalidInput(f"{name}.dtype {dtype!r} is not accepted; use one of "
                           f"{', '.join(B64_DTYPES)}")
    try:
        arr = np.asarray(data, dtype=dtype)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{name}: nested lists are not a rectangular numeric array "
                           f"({exc})") from exc
    except OverflowError as exc:  # 300 as uint8, 10**400 as float64
        raise InvalidInput(f"{name}: a value is out of range for dtype {dtype} ({exc})") from exc
    if arr.dtype.kind not in "uif":
        raise InvalidInput(f"{name}: values must be numbers, got {arr.dtype} data")
    return arr


async def _frames_from_json(request: Request) -> tuple[dict[str, RawFrame], list[str]]:
    try:
        body = jsonio.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"request JSON is not valid: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("frames"), dict):
        raise InvalidInput("request body must be a JSON object with a 'frames' object "
                           "mapping modality names to frames")
    stale = _stale_names(body.get("stale", []))
    frames: dict[str, RawFrame] = {}
    fields: dict[str, str] = {}
    for field, value in body["frames"].items():
        _put(frames, fields, field, _json_frame(field, value))
    return frames, stale


def _check_closed(body: bytes, content_type: str) -> None:
    """Refuse a multipart body that stops before its closing boundary: the form parser
    would silently drop the part it was in, and the answer would leave that sensor out."""
    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if boundary is None:
        return  # the form parser names the missing boundary
    if body.rfind(b"--" + boundary + b"--") < 0:  # found at once at the end when complete
        raise InvalidInput(f"multipart body is truncated: it does not end with the closing "
                           f"boundary --{boundary.decode('latin-1')}--; {len(body)} bytes "
                           "received, every part must be complete")


async def _frames_from_form(request: Request) -> dict[str, RawFrame]:
    frames: dict[str, RawFrame] = {}
    fields: dict[str, str] = {}
    # Read whole first (the form parser reads the same cached bytes) to see how it ends.
    _check_closed(await request.body(), request.headers.get("content-type", ""))
    async with request.form(max_files=16, max_fields=16) as form:
        for field, value in form.multi_items():
            if not isinstance(value, UploadFile):
                raise InvalidInput(f"form field {field!r} must be a file upload "
                                   f"(curl -F {field}=@frame001.ext)")
            _put(frames, fields, field, await value.read())
    return frames


def _answer(rig_id: str, pred: RigPrediction, t0: float) -> dict[str, Any]:
    latency = {k: round(v * 1e3, 3) for k, v in pred.timings.items()}
    latency["server"] = round((time.perf_counter() - t0) * 1e3, 3)
    return {
        "rig_id": rig_id, "engine": pred.engine, "subset": pred.subset,
        "joints": np.round(pred.joints.astype(np.float64), 6).tolist(),
        "action": pred.action,
        "action_probs": dict(zip(pred.action_labels,
                                 np.round(pred.action_probs.astype(np.float64), 6).tolist(),
                                 strict=True)),
        "used": list(pred.used), "dropped": pred.dropped, "dropped_detail": pred.messages,
        "latency_ms": latency,
        **{k: np.asarray(v).tolist() for k, v in pred.extra.items()},
    }


@router.post("/rigs/{rig_id}/infer")
async def infer(request: Request, rig_id: str) -> Response:
    """Pose (17×3 m) and action from the frames present; see the module docstring."""
    t0 = time.perf_counter()
    if len(rig_id) > _MAX_ID:
        raise InvalidInput(f"rig id is {len(rig_id)} characters; at most {_MAX_ID}")
    service = get_service(request)
    ctype = request.headers.get("content-type", "")
    media = ctype.lower()  # type and subtype are case-insensitive (RFC 9110 §8.3.1)
    stale: list[str] = []
    if media.startswith("multipart/form-data"):
        frames = await _frames_from_form(request)
    elif media.startswith("application/json") or not media:
        frames, stale = await _frames_from_json(request)
    else:
        raise InvalidInput(f"Content-Type {ctype!r} is not accepted; send application/json "
                           "or multipart/form-data")
    pred = await service.infer_frames(frames, protocol=PROTOCOL, rig_id=rig_id, stale=stale)
    return Response(jsonio.dumps(_answer(rig_id, pred, t0)), media_type="application/json")
