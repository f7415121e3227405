"""`rigserve train`: parse, build the config, call `rigserve.training.train`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

# torch-free: the help lists the presets and the defaults
from rigserve.training.config import PRESETS, OptimConfig

_EPILOG = """\
examples:
  rigserve train --data data/rig --out runs/pta --modalities depth,lidar,wifi --epochs 8
  rigserve train --data data/rig --out runs/nometa --preset no_meta        # an ablation
  rigserve train --data data/rig --out runs/karmma --strategy karmma       # another method
  rigserve train --data data/tiny --out runs/tiny --epochs 1 --set optim.batch_size=8 \\
      --set model.dim=16                                                   # seconds on a CPU
  rigserve train --data data/rig --out runs/pta --resume --epochs 12      # train 4 more epochs
"""


def register(sub: Any) -> None:
    optim = OptimConfig()
    p = sub.add_parser(
        "train", help="train Purify-then-Align students for every sensor subset",
        description="Train on an MM-Fi-layout folder and evaluate every non-empty modality "
        "subset. Config layers: defaults < --preset < --config FILE < --set/shortcuts. "
        "Multi-process: torchrun --nproc-per-node N -m rigserve train ...",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, metavar="DIR",
                   help="MM-Fi-layout root (E0x/Sxx/Axx/...), e.g. from `rigserve simulate`")
    p.add_argument("--out", required=True, metavar="RUN",
                   help="run folder (checkpoint, config, metrics, plots); created if missing")
    p.add_argument("--config", metavar="FILE", help="YAML config file (keys as in RUN/config.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override, e.g. --set purify.mode=first_order (repeatable)")
    p.add_argument("--preset", help=f"named ablation preset (default pta): {', '.join(PRESETS)}")
    p.add_argument("--epochs", type=int, metavar="N",
                   help=f"shortcut for --set optim.epochs=N (default {optim.epochs})")
    p.add_argument("--modalities", metavar="LIST",
                   help="comma list, e.g. depth,lidar,wifi (default: every sensor in --data)")
    p.add_argument("--strategy", metavar="NAME",
                   help="distillation strategy: pta (default) or another method, e.g. karmma; "
                   "an unknown name is refused with the list")
    p.add_argument("--seed", type=int, metavar="N", help="random seed (default 0)")
    p.add_argument("--resume", action="store_true",
                   help="continue from RUN/checkpoint.pt with its saved config (only --epochs "
                   "still applies); without a checkpoint the run starts fresh")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from rigserve.sensors.errors import SensorError
    from rigserve.training import TrainConfig, train
    from rigserve.training.checkpoint import CheckpointError
    from rigserve.training.config import ConfigError
    from rigserve.training.data import DataError
    from rigserve.training.report import text_table
    from rigserve.training.trainer import read_metrics

    overrides = list(args.overrides)
    shortcuts = {"optim.epochs": args.epochs, "modalities": args.modalities,
                 "strategy": args.strategy, "seed": args.seed}
    overrides += [f"{k}={v}" for k, v in shortcuts.items() if v is not None]
    if args.no_progress:
        overrides.append("progress=false")
    try:
        # Paths are set as typed values, not YAML text: a folder named 2024 stays a string.
        cfg = TrainConfig.from_sources(args.config, overrides, preset=args.preset).replace(
            data=str(args.data), out=str(args.out))
        run = train(cfg, resume=args.resume)
    except (ConfigError, DataError, SensorError, CheckpointError, OSError) as exc:
        print(f"rigserve train: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    metrics = read_metrics(run)
    if metrics:
        print(text_table(metrics))
        print(f"run written to {run}")
    return 0
