"""The server's one configuration object, read from ``RIGSERVE_*`` variables and the CLI.

Validated when it is built (start-up), never at first use: a bad port, a missing
repository or a TLS key without a certificate stops `rigserve serve` before anything
loads (style.md §3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Self

Precision = Literal["fp16", "fp32", "int8"]
_MIB = 1 << 20
_DEFAULT_PRECISION: tuple[Precision, ...] = ("fp16", "fp32", "int8")


def _split_csv(value: object) -> object:
    """Env values arrive as strings: ``RIGSERVE_API_KEYS=k1,k2`` -> ["k1", "k2"]."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything `rigserve serve` can be told; env prefix ``RIGSERVE_``."""

    model_config = SettingsConfigDict(env_prefix="RIGSERVE_", extra="forbid", frozen=True)

    repository: Path = Field(description="model repository holding manifest.json")
    host: str = "0.0.0.0"
    http_port: int = Field(8000, ge=0, le=65535, description="0 picks a free port")
    grpc_port: int | None = Field(8001, ge=0, le=65535, description="None disables gRPC")

    intra_op_threads: int = Field(1, ge=0, description="ONNX Runtime intra-op threads; 0 = auto")
    inter_op_threads: int = Field(1, ge=0)
    max_batch_size: int = Field(8, ge=1, description="dynamic batching: rows per engine run")
    max_queue_delay_ms: float = Field(
        1.0, ge=0, description="how long a partial batch waits for more while others are in flight"
    )
    max_queue_size: int = Field(64, ge=1, description="queued requests per engine before 429")
    engine_instances: int = Field(1, ge=1, le=16, description="concurrent batches per engine")
    inline_max_ms: float = Field(
        2.0, ge=0, description="a lone request (engine idle, nothing queued, nothing else in "
        "flight) runs at once on the event loop thread when its engine's mean compute time is "
        "at most this; skips the queue and thread hand-off; 0 disables")
    gil_switch_interval_us: float = Field(
        100.0, gt=0, le=5000, description="Python's thread switch interval for the server "
        "process (sys.setswitchinterval); small lets engine threads hand answers back to a "
        "busy event loop at once instead of after Python's default 5000 us")
    warmup_runs: int = Field(2, ge=0)
    precision: Annotated[list[Precision], NoDecode] = Field(
        default_factory=lambda: list(_DEFAULT_PRECISION),
        description="preferred engine precisions, first that the repository has wins",
    )

    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    auth_exempt_paths: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["/v2/health/live", "/v2/health/ready", "/metrics", "/healthz"],
        description="path prefixes that never need an API key",
    )
    max_body_bytes: int = Field(64 * _MIB, ge=1024)
    max_modality_bytes: dict[str, int] = Field(
        default_factory=lambda: {
            "depth": 4 * _MIB, "lidar": 8 * _MIB, "mmwave": 2 * _MIB, "wifi": 2 * _MIB,
        },
        description="per-modality frame size limit (bytes as sent); others: max_body_bytes",
    )
    staleness_s: float = Field(1.0, gt=0, description="stream: silent this long = offline")
    stream_queue_size: int = Field(8, ge=1, description="stream: frames queued per stream "
                                   "before the oldest unprocessed one is dropped")
    stream_max_inflight: int = Field(4, ge=1, description="stream: frames in inference at once")
    infer_stream_max_inflight: int = Field(
        8, ge=1, description="gRPC ModelStreamInfer: requests of one stream in inference at "
        "once, so the batcher can batch them; answers still leave in request order")

    grpc_max_message_bytes: int = Field(64 * _MIB, ge=4 * _MIB)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    drain_timeout_s: float = Field(10.0, ge=0, description="graceful shutdown: wait for in-flight")

    @field_validator("api_keys", "auth_exempt_paths", "precision", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("repository")
    @classmethod
    def _repository_exists(cls, value: Path) -> Path:
        if not (value / "manifest.json").is_file():
            raise ValueError(f"{value} is not a model repository (no manifest.json in it); "
                             "(create one with `rigserve export RUN --out REPO`)")
        return value

    @field_validator("precision")
    @classmethod
    def _precision_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("precision preference must name at least one of fp16, fp32, int8")
        return value

    @field_validator("max_modality_bytes")
    @classmethod
    def _known_modalities(cls, value: dict[str, int]) -> dict[str, int]:
        from rigserve.sensors.specs import MODALITIES

        unknown = sorted(set(value) - set(MODALITIES))
        if unknown:
            raise ValueError(f"max_modality_bytes names unknown modalities {unknown}; "
                             f"known: {sorted(MODALITIES)}")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Self:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        for p in (self.tls_cert, self.tls_key):
            if p is not None and not p.is_file():
                raise ValueError(f"TLS file {p} does not exist")
        if self.grpc_port is not None and self.grpc_port != 0 and self.grpc_port == self.http_port:
            raise ValueError(f"http_port and grpc_port are both {self.http_port}")
        return self

    @property
    def max_queue_delay_s(self) -> float:
        return self.max_queue_delay_ms / 1e3

    def modality_limit(self, modality: str) -> int:
        return self.max_modality_bytes.get(modality, self.max_body_bytes)
