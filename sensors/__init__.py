"""Sensor specs, MM-Fi formats, validation, preprocessing, the dataset reader, the simulator.

numpy only: the server imports this package, so nothing here may pull in torch.
"""

from .csi import clean_csi
from .dataset import MMFiDataset, MMFiIndex, MMFiSequence, Split, split_sequences
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
from .preprocess import PreprocessSpec, model_input_shape, preprocess_frame, preprocess_frames
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
    "MMFiDataset",
    "MMFiIndex",
    "MMFiSequence",
    "ModalitySpec",
    "PreprocessSpec",
    "SensorError",
    "Split",
    "UnknownModality",
    "all_subsets",
    "check_frame",
    "clean_csi",
    "decode_frame",
    "encode_frame",
    "frame_path",
    "get_modality",
    "ground_truth_path",
    "model_input_shape",
    "parse_subset",
    "preprocess_frame",
    "preprocess_frames",
    "read_csi",
    "read_frame",
    "read_ground_truth",
    "split_sequences",
    "subset_name",
    "write_frame",
    "write_ground_truth",
]
