"""`rigserve train`: parse, build the config, call `rigserve.training.train`."""

from __future__ import annotations

import argparse
from typing import Any

from rigserve.training.config import PRESETS  # torch-free: the help lists the presets


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train", help="train Purify-then-Align students for every sensor subset",
        description="Train on an MM-Fi-layout folder and evaluate every non-empty modality "
        "subset. Config layers: defaults < --preset < --config FILE < --set/shortcuts. "
        "Multi-process: torchrun --nproc-per-node N -m rigserve train ...")
    p.add_argument("--data", required=True, help="MM-Fi-layout root (E0x/Sxx/Axx/...)")
    p.add_argument("--out", required=True, help="run folder (checkpoint, config, metrics, plots)")
    p.add_argument("--config", help="YAML config file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override, e.g. --set purify.mode=first_order (repeatable)")
    p.add_argument("--preset", help=f"named ablation preset: {', '.join(PRESETS)}")
    p.add_argument("--epochs", type=int, help="shortcut for --set optim.epochs=N")
    p.add_argument("--modalities", help="comma list, e.g. depth,lidar,wifi (default: all found)")
    p.add_argument("--strategy", help="distillation strategy (default pta)")
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true", help="continue from RUN/checkpoint.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from rigserve.training import TrainConfig, train
    from rigserve.training.report import text_table
    from rigserve.training.trainer import read_metrics

    overrides = list(args.overrides)
    shortcuts = {"optim.epochs": args.epochs, "modalities": args.modalities,
                 "strategy": args.strategy, "seed": args.seed}
    overrides += [f"{k}={v}" for k, v in shortcuts.items() if v is not None]
    if args.no_progress:
        overrides.append("progress=false")
    # Paths are set as typed values, not YAML text: a folder named 2024 stays a string.
    cfg = TrainConfig.from_sources(args.config, overrides, preset=args.preset).replace(
        data=str(args.data), out=str(args.out))
    run = train(cfg, resume=args.resume)
    metrics = read_metrics(run)
    if metrics:
        print(text_table(metrics))
        print(f"run written to {run}")
    return 0
