"""Training configuration: frozen dataclasses, loaded from YAML with dotted overrides.

``TrainConfig.from_sources(file, overrides)`` layers: defaults < named preset < YAML file
< ``--set key=value`` overrides. The resolved config is saved as ``RUN/config.yaml``
beside every checkpoint, so a run is reproducible from its folder alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config key or value that does not exist or does not parse."""


@dataclass(frozen=True)
class ModelConfig:
    dim: int = 64
    width: int = 8
    centroids: int = 32
    neighbours: int = 16
    #: LayerNorm on each modality's feature before fusion (see ``model.py``).
    modality_norm: bool = True
    pose_head: bool = True
    action_head: bool = True


@dataclass(frozen=True)
class LossConfig:
    pose_weight: float = 1.0
    action_weight: float = 0.1


#: Accepted values of the ``purify`` choices (see ``PurifyConfig``).
PURIFY_MODES = ("lookahead", "first_order", "none")
VAL_PRESENT = ("subset", "all")
PURIFY_PARAMS = ("all", "head")


@dataclass(frozen=True)
class PurifyConfig:
    #: ``lookahead`` (one-step hypergradient), ``first_order`` or ``none`` (uniform weights).
    mode: str = "lookahead"
    meta_lr: float = 0.05
    #: Inner step size alpha of the look-ahead Θ' = Θ − α∇Θ L_inner.
    inner_lr: float = 0.05
    #: Meta step every N training steps. 4 keeps the full look-ahead (params=all, a
    #: double backward: ~4x a plain step) at ~2.4x a plain step amortised; θ is three
    #: numbers moved by Adam, so a meta step every 4th batch is plenty.
    every: int = 4
    #: Which of Θ the look-ahead differentiates through: ``all`` or ``head`` (fusion heads).
    params: str = "all"
    #: Modalities present in the meta-validation batch: ``all`` scores the purified
    #: teacher f_T = Σ w_i f_i itself (the paper's Purify objective); ``subset`` draws the
    #: training dropout's random subsets (renormalised weights, as students are used; a
    #: single-modality sample then carries no gradient for θ). Measured on the 24-subject
    #: rig (seeds 0/1): ``all`` helps alone (mean MPJPE 143.8 → 140.2 mm) but not on top
    #: of the λ ramp (142.5 → 148.6: θ drifted to w_wifi ≈ 0.7 by epoch 8 at seed 1), so
    #: ``subset`` stays the default.
    val_present: str = "subset"

    def __post_init__(self) -> None:
        # Checked here, not at the first meta step, so a typo fails before any training.
        _check_choice("purify.mode", self.mode, PURIFY_MODES)
        _check_choice("purify.val_present", self.val_present, VAL_PRESENT)
        _check_choice("purify.params", self.params, PURIFY_PARAMS)


@dataclass(frozen=True)
class AlignConfig:
    weight: float = 0.1  # λ in L_inner = L_task + λ·L_DiffKD
    #: Fraction of all steps over which λ ramps linearly from 0 to ``weight``. The
    #: freshly initialised diffusion parts' alignment loss starts large (~18, ~0.05 an
    #: epoch later); at full λ its gradient drags the students' encoders away from the
    #: task before the teacher means anything. 0 disables the ramp. 0.125 (one epoch of
    #: eight) on the 24-subject rig, mean over 7 subsets and seeds 0/1: PA-MPJPE 92.9 →
    #: 91.5 mm, MPJPE 143.8 → 142.5 mm (LiDAR PA 91.6 → 86.1).
    ramp: float = 0.125
    latent_dim: int = 32
    train_steps: int = 1000
    beta_start: float = 1.0e-4
    beta_end: float = 0.02
    inference_steps: int = 5
    recon: bool = True


@dataclass(frozen=True)
class DropoutConfig:
    #: ``subset``: a uniform random non-empty subset per sample; ``per_modality``: each
    #: modality dropped independently with its hand-set rate (X-Fi style, redrawn if
    #: empty); ``none``: all present.
    mode: str = "subset"
    rates: Mapping[str, float] = field(default_factory=dict)
    default_rate: float = 0.5


@dataclass(frozen=True)
class AugmentConfig:
    """Sensor-noise augmentation of training batches (``augment.py``)."""

    enabled: bool = False
    #: Depth: range jitter σ (metres) on returns and the fraction of pixels dropped to 0.
    depth_jitter_m: float = 0.01
    depth_dropout: float = 0.05
    #: Point clouds: xyz jitter σ (metres) and the fraction of points dropped.
    point_jitter_m: float = 0.01
    point_dropout: float = 0.1


@dataclass(frozen=True)
class OptimConfig:
    #: CPU-sized runs (a few hundred steps per epoch, ~6 epochs) need the higher rate to
    #: learn the articulation and not only the mean pose; the warm-up keeps it stable.
    lr: float = 5.0e-3
    weight_decay: float = 1.0e-4
    batch_size: int = 32
    epochs: int = 10
    grad_clip: float = 5.0
    #: Fraction of all steps spent in linear learning-rate warm-up before the cosine decay.
    warmup: float = 0.05

    def __post_init__(self) -> None:
        # Zero epochs would "finish" an untrained run and publish its metrics; zero batch
        # divides by zero a minute into data loading. Refuse both before anything runs.
        _check_at_least("optim.epochs", self.epochs, 1)
        _check_at_least("optim.batch_size", self.batch_size, 1)
        if not self.lr > 0:
            raise ConfigError(f"optim.lr={self.lr!r}; accepted: a learning rate > 0")


@dataclass(frozen=True)
class SplitConfig:
    kind: str = "random"
    protocol: str = "p3"
    val_ratio: float = 0.25
    #: Fraction of the training sequences held out as the meta-validation split for θ.
    meta_ratio: float = 0.2


@dataclass(frozen=True)
class TrainConfig:
    data: str = ""
    out: str = ""
    modalities: tuple[str, ...] = ()
    strategy: str = "pta"
    seed: int = 0
    #: Name of the preset this config started from (informational once resolved).
    preset: str = "pta"
    #: Train one model per modality and fuse their predictions (late-fusion baseline).
    unimodal: bool = False
    eval_batch_size: int = 128
    progress: bool = True
    preprocess: Mapping[str, Any] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    purify: PurifyConfig = field(default_factory=PurifyConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    dropout: DropoutConfig = field(default_factory=DropoutConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    split: SplitConfig = field(default_factory=SplitConfig)

    # ---- building ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        return _build(cls, data, "")

    @classmethod
    def from_sources(cls, file: str | Path | None = None,
                     overrides: Sequence[str] | Mapping[str, Any] = (),
                     preset: str | None = None) -> TrainConfig:
        tree: dict[str, Any] = {}
        if file is not None:
            try:
                loaded = yaml.safe_load(Path(file).read_text()) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"{file}: not a YAML config: {' '.join(str(exc).split())}"
                                  ) from exc
            if not isinstance(loaded, dict):
                raise ConfigError(f"{file}: expected a mapping at the top level, "
                                  f"got {type(loaded).__name__}")
            tree = loaded
        items = overrides.items() if isinstance(overrides, Mapping) else map(_split, overrides)
        flat = dict(items)
        name = preset or flat.pop("preset", None) or tree.pop("preset", None) or "pta"
        base = _deep_merge(preset_overrides(name), {"preset": name})
        merged = _deep_merge(base, tree)
        for key, value in flat.items():
            merged = _deep_merge(merged, _nest(key, value))
        return cls.from_dict(merged)

    def replace(self, **changes: Any) -> TrainConfig:
        return self.from_dict(_deep_merge(self.to_dict(), _plain(changes)))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


#: Named ablation presets (overrides of the defaults), see docs in the package.
PRESETS: dict[str, dict[str, Any]] = {
    "pta": {},
    "pta_first_order": {"purify": {"mode": "first_order"}},
    "no_meta": {"purify": {"mode": "none"}},
    "no_diffusion": {"strategy": "feature_kd"},
    "no_kd": {"strategy": "task_only"},
    "unimodal": {"unimodal": True, "strategy": "task_only", "purify": {"mode": "none"},
                 "dropout": {"mode": "none"}},
    "xfi_dropout": {"strategy": "task_only", "purify": {"mode": "none"},
                    "dropout": {"mode": "per_modality", "default_rate": 0.5}},
    "multimodal": {"strategy": "task_only", "purify": {"mode": "none"},
                   "dropout": {"mode": "none"}},
}


def preset_overrides(name: str) -> dict[str, Any]:
    """A named preset; every registered strategy is also a preset of its own name (its
    defaults), so benchmarks iterate methods through the strategy registry."""
    if name in PRESETS:
        return dict(PRESETS[name])
    from .strategies import STRATEGIES  # lazy: strategies import this module

    if name in STRATEGIES:
        return {"strategy": name}
    raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}; "
                      f"or a strategy: {', '.join(sorted(STRATEGIES))}")


def method_presets() -> tuple[str, ...]:
    """Registered strategies that no named preset covers (one benchmark row each)."""
    from .strategies import STRATEGIES

    covered = {PRESETS[p].get("strategy", "pta") for p in PRESETS}
    return tuple(sorted(set(STRATEGIES) - covered))


# ---- helpers ----------------------------------------------------------------------


def _check_choice(key: str, value: str, accepted: Sequence[str]) -> None:
    if value not in accepted:
        raise ConfigError(f"{key}={value!r}; accepted: {', '.join(accepted)}")


def _check_at_least(key: str, value: int, least: int) -> None:
    if value < least:
        raise ConfigError(f"{key}={value!r}; accepted: an integer >= {least}")


def _split(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected key=value, e.g. optim.epochs=5")
    key, raw = item.split("=", 1)
    return key.strip(), yaml.safe_load(raw)


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def _deep_merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) and k not in ("rates",
                                                                                   "preprocess"):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        names = ", ".join(prefix + u for u in sorted(unknown))
        raise ConfigError(f"unknown config key(s) {names}; "
                          f"known under {prefix or 'top level'}: {', '.join(fields)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        f = fields[name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(f"{prefix}{name}", value, default)
    return cls(**kwargs)


def _coerce(key: str, value: Any, default: Any) -> Any:
    if isinstance(default, tuple):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, str):
        # YAML 1.1 reads "5e-3" (no dot in the mantissa) as a string; accept it as a number.
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if isinstance(default, (int, float)) and not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if isinstance(default, float):
        return float(value)
    if isinstance(default, int) and not isinstance(value, int):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if isinstance(default, Mapping):
        return dict(value)
    return value


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
