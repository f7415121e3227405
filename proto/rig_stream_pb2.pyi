# mypy: ignore-errors
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tensor(_message.Message):
    __slots__ = ("dtype", "shape", "data")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    data: bytes
    def __init__(self, dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., data: _Optional[bytes] = ...) -> None: ...

class SensorPayload(_message.Message):
    __slots__ = ("file", "tensor")
    FILE_FIELD_NUMBER: _ClassVar[int]
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    file: bytes
    tensor: Tensor
    def __init__(self, file: _Optional[bytes] = ..., tensor: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...

class RigFrame(_message.Message):
    __slots__ = ("rig_id", "sequence", "capture_time", "sensors", "model")
    class SensorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: SensorPayload
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[SensorPayload, _Mapping]] = ...) -> None: ...
    RIG_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    SENSORS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    rig_id: str
    sequence: int
    capture_time: float
    sensors: _containers.MessageMap[str, SensorPayload]
    model: str
    def __init__(self, rig_id: _Optional[str] = ..., sequence: _Optional[int] = ..., capture_time: _Optional[float] = ..., sensors: _Optional[_Mapping[str, SensorPayload]] = ..., model: _Optional[str] = ...) -> None: ...

class SensorEvent(_message.Message):
    __slots__ = ("modality", "state", "last_seen", "reason")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[SensorEvent.State]
        ONLINE: _ClassVar[SensorEvent.State]
        OFFLINE: _ClassVar[SensorEvent.State]
    STATE_UNSPECIFIED: SensorEvent.State
    ONLINE: SensorEvent.State
    OFFLINE: SensorEvent.State
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    modality: str
    state: SensorEvent.State
    last_seen: float
    reason: str
    def __init__(self, modality: _Optional[str] = ..., state: _Optional[_Union[SensorEvent.State, str]] = ..., last_seen: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("joints", "action_logits", "action", "action_probability", "subset", "used", "dropped", "engine")
    class DroppedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOINTS_FIELD_NUMBER: _ClassVar[int]
    ACTION_LOGITS_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ACTION_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    SUBSET_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    joints: _containers.RepeatedScalarFieldContainer[float]
    action_logits: _containers.RepeatedScalarFieldContainer[float]
    action: str
    action_probability: float
    subset: str
    used: _containers.RepeatedScalarFieldContainer[str]
    dropped: _containers.ScalarMap[str, str]
    engine: str
    def __init__(self, joints: _Optional[_Iterable[float]] = ..., action_logits: _Optional[_Iterable[float]] = ..., action: _Optional[str] = ..., action_probability: _Optional[float] = ..., subset: _Optional[str] = ..., used: _Optional[_Iterable[str]] = ..., dropped: _Optional[_Mapping[str, str]] = ..., engine: _Optional[str] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class RigPrediction(_message.Message):
    __slots__ = ("sequence", "capture_time", "prediction", "error", "events", "dropped_sequences", "dropped_total", "server_latency_s", "online")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    DROPPED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SERVER_LATENCY_S_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    capture_time: float
    prediction: Prediction
    error: Error
    events: _containers.RepeatedCompositeFieldContainer[SensorEvent]
    dropped_sequences: _containers.RepeatedScalarFieldContainer[int]
    dropped_total: int
    server_latency_s: float
    online: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, sequence: _Optional[int] = ..., capture_time: _Optional[float] = ..., prediction: _Optional[_Union[Prediction, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., events: _Optional[_Iterable[_Union[SensorEvent, _Mapping]]] = ..., dropped_sequences: _Optional[_Iterable[int]] = ..., dropped_total: _Optional[int] = ..., server_latency_s: _Optional[float] = ..., online: _Optional[_Iterable[str]] = ...) -> None: ...
