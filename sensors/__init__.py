"""Sensor specs, MM-Fi formats, validation, preprocessing, the dataset reader, the simulator.

numpy only: the server imports this package, so nothing here may pull in torch.
"""

from .errors import FormatError, InvalidFrame, SensorError, UnknownModality
from .formats import (
    decode_frame,
    encode_frame,
    frame_path,
    ground_truth_path,
    read_csi,
    read_frame,
    read_ground_truth,
    write_frame,
    write_ground_truth,
)
from .specs import (
    ACTION_CODES,
    ACTION_NAMES,
    JOINT_NAMES,
    MODALITIES,
    PROTOCOLS,
    SENSOR_MODALITIES,
    ModalitySpec,
    all_subsets,
    get_modality,
    parse_subset,
    subset_name,
)
from .validate import check_frame

__all__ = [
    "ACTION_CODES",
    "ACTION_NAMES",
    "JOINT_NAMES",
    "MODALITIES",
    "PROTOCOLS",
    "SENSOR_MODALITIES",
    "FormatError",
    "InvalidFrame",
    "ModalitySpec",
    "SensorError",
    "UnknownModality",
    "all_subsets",
    "check_frame",
    "decode_frame",
    "encode_frame",
    "frame_path",
    "get_modality",
    "ground_truth_path",
    "parse_subset",
    "read_csi",
    "read_frame",
    "read_ground_truth",
    "subset_name",
    "write_frame",
    "write_ground_truth",
]
