"""PTA and every ablation on one simulated rig: per-subset MPJPE / PA-MPJPE / top-1.

Simulates a fixed benchmark rig over {depth, lidar, wifi}, trains each preset with the
same data, epochs and seed, and reports the paper-style per-subset table, the learned
weights, the issue's acceptance checks (pass or fail, with the numbers) and the cost of
a look-ahead PTA step relative to a plain multimodal step.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from rigserve.bench._report import command_line, markdown_table, write_section

log = logging.getLogger(__name__)

PRESETS = ("pta", "pta_first_order", "no_meta", "no_diffusion", "no_kd", "unimodal",
           "xfi_dropout")
MODALITIES = ("depth", "lidar", "wifi")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--work", default="bench_runs/accuracy", help="data and run folders")
    p.add_argument("--subjects", type=int, default=8, help="subjects (half in E01, half in E02)")
    p.add_argument("--actions", type=int, default=6, help="actions A01..")
    p.add_argument("--frames", type=int, default=40, help="frames per sequence")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--presets", default=",".join(PRESETS))
    p.add_argument("--timing-steps", type=int, default=20)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied to every preset")
    p.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds, not minutes)")
    p.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")


def _simulate(args: argparse.Namespace, root: Path) -> Path:
    from rigserve.sensors.simulator import simulate

    half = max(1, args.subjects // 2)
    subjects = [f"S{i:02d}" for i in range(1, half + 1)] + \
               [f"S{i:02d}" for i in range(11, 11 + args.subjects - half)]
    actions = [f"A{i:02d}" for i in range(1, args.actions + 1)]
    if not (root / ".complete").exists():
        simulate(root, subjects=subjects, actions=actions, frames=args.frames, seed=args.seed,
                 modalities=list(MODALITIES))
        (root / ".complete").write_text("ok\n")
    return root


def _config(args: argparse.Namespace, data: Path, out: Path, preset: str) -> Any:
    from rigserve.training import TrainConfig

    sets = [f"data={data}", f"out={out}", f"modalities={','.join(MODALITIES)}",
            f"optim.epochs={args.epochs}", f"seed={args.seed}", "progress=false",
            "split.protocol=p3", *args.overrides]
    if args.tiny:
        sets += ["model.dim=16", "model.width=4", "optim.batch_size=16"]
    return TrainConfig.from_sources(overrides=sets, preset=preset)


def step_times(cfg: Any, steps: int) -> dict[str, float]:
    """Median seconds of a training step: plain multimodal vs PTA look-ahead variants."""
    import statistics

    import torch

    from rigserve.training.data import load_data
    from rigserve.training.trainer import Trainer

    variants = {"multimodal": ("multimodal", []),
                "pta_lookahead_all": ("pta", ["purify.params=all"]),
                "pta_lookahead_head": ("pta", ["purify.params=head"]),
                "pta_first_order": ("pta_first_order", [])}
    out = {}
    for name, (preset, extra) in variants.items():
        c = cfg.from_sources(overrides={**{k: v for k, v in cfg.to_dict().items()
                                           if k in ("data", "out", "modalities", "seed")},
                                        "progress": False,
                                        **dict(x.split("=", 1) for x in extra)},
                             preset=preset).replace(model=cfg.model.__dict__,
                                                    optim=cfg.optim.__dict__)
        tr = Trainer(c, load_data(c))
        bs = c.optim.batch_size
        times = []
        for i in range(steps + 3):
            idx = torch.arange(i * bs, (i + 1) * bs) % len(tr.data.train)
            t0 = time.perf_counter()
            tr.step(tr.make_batch(tr.data.train, idx))
            if i >= 3:
                times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    return out


def run(args: argparse.Namespace) -> int:
    from rigserve.training import load_run, train
    from rigserve.training.evaluate import mean_row

    work = Path(args.work)
    data = _simulate(args, work / "data")
    presets = [p for p in args.presets.split(",") if p]
    results: dict[str, Any] = {}
    for preset in presets:
        t0 = time.perf_counter()
        run_dir = train(_config(args, data, work / preset, preset))
        loaded = load_run(run_dir)
        results[preset] = {"metrics": loaded.metrics, "weights": loaded.weights,
                           "mean": mean_row(loaded.metrics), "seconds": time.perf_counter() - t0}
        print(f"{preset}: mean MPJPE {results[preset]['mean']['mpjpe_mm']:.1f} mm "
              f"({results[preset]['seconds']:.0f} s)")
    times = step_times(_config(args, data, work / "timing", "pta"), args.timing_steps)
    body = _body(results, times, presets)
    print(body)
    if args.write:
        write_section("accuracy", "Accuracy: PTA and its ablations per sensor subset", body,
                      command_line())
    return 0


def _body(results: dict[str, Any], times: dict[str, float], presets: list[str]) -> str:
    subsets = list(results[presets[0]]["metrics"])
    parts = []
    for key, title in (("mpjpe_mm", "MPJPE (mm, lower is better)"),
                       ("pa_mpjpe_mm", "PA-MPJPE (mm)"), ("action_top1", "action top-1")):
        rows = [[s] + [results[p]["metrics"][s][key] for p in presets] for s in subsets]
        rows.append(["mean"] + [results[p]["mean"][key] for p in presets])
        parts.append(f"**{title}**\n\n" + markdown_table(["subset", *presets], rows))
    w_rows = [[p] + [results[p]["weights"].get(m, float("nan")) for m in MODALITIES]
              for p in presets]
    parts.append("**Purified weights softmax(θ)**\n\n" +
                 markdown_table(["preset", *MODALITIES], w_rows))
    parts.append("**Checks from issue 3**\n\n" + _checks(results))
    base = times["multimodal"]
    t_rows = [[k, v * 1e3, v / base] for k, v in times.items()]
    parts.append("**Step time** (median, one process)\n\n" +
                 markdown_table(["step", "ms", "× multimodal"], t_rows))
    return "\n\n".join(parts)


def _checks(results: dict[str, Any]) -> str:
    if "pta" not in results:
        return "PTA not run."
    pta = results["pta"]
    lines = []
    for other in ("no_meta", "no_diffusion", "unimodal"):
        if other in results:
            a, b = pta["mean"]["mpjpe_mm"], results[other]["mean"]["mpjpe_mm"]
            lines.append(f"- PTA mean MPJPE {a:.1f} vs {other} {b:.1f}: "
                         f"{'better' if a < b else 'NOT better'}")
    w = pta["weights"]
    lowest = min(w, key=w.get)
    lines.append(f"- lowest learned weight: {lowest} ({w[lowest]:.3f}); "
                 f"{'WiFi lowest as expected' if lowest == 'wifi' else 'WiFi is NOT lowest'}")
    m = pta["metrics"]
    if "lidar" in m and "lidar+wifi" in m:
        cost = m["lidar+wifi"]["mpjpe_mm"] / m["lidar"]["mpjpe_mm"] - 1
        lines.append(f"- adding WiFi to LiDAR changes MPJPE by {cost:+.1%} "
                     f"({'within' if cost < 0.10 else 'NOT within'} the 10% budget)")
    return "\n".join(lines)
