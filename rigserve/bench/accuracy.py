"""PTA and every ablation on one simulated rig: per-subset MPJPE / PA-MPJPE / top-1.

Simulates a fixed benchmark rig over {depth, lidar, wifi}, trains each preset with the
same data, epochs and seed, and reports the paper-style per-subset table, the learned
weights, the issue's acceptance checks (pass or fail, with the numbers) and the cost of
a look-ahead PTA step relative to a plain multimodal step.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rigserve.bench._report import command_line, markdown_table, write_section

log = logging.getLogger(__name__)

PRESETS = ("pta", "pta_first_order", "no_meta", "no_diffusion", "no_kd", "unimodal",
           "xfi_dropout")
MODALITIES = ("depth", "lidar", "wifi")
ENVIRONMENTS = ("E01", "E02", "E03", "E04")


def default_presets() -> tuple[str, ...]:
    """PTA, its ablations, then every other registered strategy (one row each)."""
    from rigserve.training.config import method_presets

    return (*PRESETS, *method_presets())


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--work", default="bench_runs/accuracy", help="data and run folders")
    p.add_argument("--subjects", type=int, default=12,
                   help="subjects, spread evenly over the four environments (the demo's rig)")
    p.add_argument("--actions", type=int, default=27, help="actions A01..")
    p.add_argument("--frames", type=int, default=24, help="frames per sequence")
    p.add_argument("--depth-size", default="60x80", metavar="HxW",
                   help="simulated depth camera size (the demo's; the model input is 48x64 "
                        "either way, so a native 480x640 camera only costs simulation time)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--presets", default=None,
                   help="comma-separated presets (default: PTA, its ablations and every "
                        "other registered strategy)")
    p.add_argument("--timing-steps", type=int, default=24,
                   help="timed training steps per variant (a multiple of purify.every)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied to every preset")
    p.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds, not minutes)")
    p.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")


def _subjects(n: int) -> list[str]:
    """``n`` subjects dealt round-robin over E01..E04 (S01, S11, S21, S31, S02, ...)."""
    per_env = dict.fromkeys(ENVIRONMENTS, 0)
    out = []
    for i in range(n):
        env = i % len(ENVIRONMENTS)
        per_env[ENVIRONMENTS[env]] += 1
        if per_env[ENVIRONMENTS[env]] > 10:
            raise ValueError(f"--subjects {n}: at most 40 (10 per environment)")
        out.append(f"S{env * 10 + per_env[ENVIRONMENTS[env]]:02d}")
    return sorted(out)


def _depth_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--depth-size {text!r}: expected HxW, e.g. 60x80") from None
    return h, w


def _simulate(args: argparse.Namespace, root: Path) -> Path:
    from rigserve.sensors.simulator import simulate

    stamp = (f"subjects={args.subjects} actions={args.actions} frames={args.frames} "
             f"depth={args.depth_size} seed={args.seed}\n")
    done = root / ".complete"
    if done.exists() and done.read_text() == stamp:
        return root
    if root.exists():
        shutil.rmtree(root)  # another rig's files: never mix two rigs in one folder
    simulate(root, subjects=_subjects(args.subjects),
             actions=[f"A{i:02d}" for i in range(1, args.actions + 1)], frames=args.frames,
             depth_size=_depth_size(args.depth_size), seed=args.seed,
             modalities=list(MODALITIES))
    done.write_text(stamp)
    return root


def _config(args: argparse.Namespace, data: Path, out: Path, preset: str,
            extra: Sequence[str] = ()) -> Any:
    from rigserve.training import TrainConfig

    sets = [f"data={data}", f"out={out}", f"modalities={','.join(MODALITIES)}",
            f"optim.epochs={args.epochs}", f"seed={args.seed}", "progress=false",
            "split.protocol=p3", *args.overrides, *extra]
    if args.tiny:
        sets += ["model.dim=16", "model.width=4", "optim.batch_size=16"]
    return TrainConfig.from_sources(overrides=sets, preset=preset)


def _timed_steps(cfg: Any, steps: int) -> list[tuple[bool, float]]:
    """(was a meta step, seconds) of ``steps`` consecutive training steps after 3 warm-ups."""
    import torch

    from rigserve.training.data import load_data
    from rigserve.training.trainer import Trainer

    tr = Trainer(cfg, load_data(cfg))
    bs, n = cfg.optim.batch_size, len(tr.data.train)
    every = cfg.purify.every
    warm = -(-3 // every) * every  # whole meta periods, so timing starts on a meta step
    out = []
    for i in range(warm + steps):
        idx = torch.arange(i * bs, (i + 1) * bs) % n
        meta = tr.meta_on and tr.step_count % every == 0
        t0 = time.perf_counter()
        tr.step(tr.make_batch(tr.data.train, idx))
        if i >= warm:
            out.append((meta, time.perf_counter() - t0))
    return out


def step_times(args: argparse.Namespace, data: Path, work: Path) -> list[list[Any]]:
    """Rows (variant, meta every, ms per meta step, ms per other step, amortised ms):
    a plain multimodal step against PTA's variants, same model and batch size.

    The amortised time is the mean over whole meta periods: (t_meta + (k−1)·t_other)/k.
    """
    import statistics

    from rigserve.training import TrainConfig

    default_every = TrainConfig.from_sources(preset="pta").purify.every
    variants = {"multimodal (plain)": ("multimodal", []),
                "pta, no meta step": ("pta", ["purify.mode=none"]),
                f"pta look-ahead all, every {default_every} (default)": ("pta", []),
                "pta look-ahead all, every 1": ("pta", ["purify.every=1"]),
                "pta look-ahead head, every 1": ("pta", ["purify.every=1",
                                                         "purify.params=head"]),
                "pta first-order, every 1": ("pta_first_order", ["purify.every=1"])}
    rows = []
    for name, (preset, extra) in variants.items():
        cfg = _config(args, data, work / "timing", preset, extra)
        every = cfg.purify.every if cfg.purify.mode != "none" else 1
        steps = max(every, args.timing_steps // every * every)
        timed = _timed_steps(cfg, steps)
        meta = [t for m, t in timed if m]
        other = [t for m, t in timed if not m]
        t_meta = statistics.median(meta) if meta else float("nan")
        t_other = statistics.median(other) if other else float("nan")
        if not meta:
            amortised = t_other
        elif not other:
            amortised = t_meta
        else:
            amortised = (t_meta + (every - 1) * t_other) / every
        rows.append([name, every if meta else "-", t_meta * 1e3, t_other * 1e3, amortised * 1e3])
    return rows


def _finished(run_dir: Path) -> dict[str, Any]:
    """Per-subset metrics, their mean and the purified weights from ``RUN/metrics.json``.

    ``train`` writes all three there when a run finishes (the numbers ``load_run`` gives,
    and every run folder since the first training loop has them), so the benchmark reads
    the file instead of rebuilding each model, and needs no reload fallback.
    """
    from rigserve.training.trainer import read_report

    report = read_report(run_dir)
    missing = [k for k in ("subsets", "mean", "weights") if k not in report]
    if missing:
        raise RuntimeError(f"{run_dir}/metrics.json: expected a finished run's subsets, mean "
                           f"and weights, missing {', '.join(missing)}")
    return {"metrics": report["subsets"], "weights": report["weights"], "mean": report["mean"]}


def run(args: argparse.Namespace) -> int:
    from rigserve.training import train

    work = Path(args.work)
    data = _simulate(args, work / "data")
    presets = [p for p in args.presets.split(",") if p] if args.presets else \
        list(default_presets())
    results: dict[str, Any] = {}
    for preset in presets:
        t0 = time.perf_counter()
        run_dir = train(_config(args, data, work / preset, preset))
        results[preset] = {**_finished(run_dir), "seconds": time.perf_counter() - t0}
        print(f"{preset}: mean MPJPE {results[preset]['mean']['mpjpe_mm']:.1f} mm "
              f"({results[preset]['seconds']:.0f} s)")
    times = step_times(args, data, work)
    body = _rig_line(args) + "\n\n" + _body(results, times, presets)
    print(body)
    if args.write:
        write_section("accuracy", "Accuracy: PTA and its ablations per sensor subset", body,
                      command_line())
    return 0


def _rig_line(args: argparse.Namespace) -> str:
    return (f"Simulated rig: {args.subjects} subjects (E01-E04) x {args.actions} actions x "
            f"{args.frames} frames, depth camera {args.depth_size}, seed {args.seed}; "
            f"modalities {', '.join(MODALITIES)}; random split (P3); every preset trains "
            f"{args.epochs} epochs with the same data, seed and overrides "
            f"({' '.join(args.overrides) or 'none'}).")


def _body(results: dict[str, Any], times: list[list[Any]], presets: list[str]) -> str:
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
    parts.append("**Checks from issue 3**\n\n" + _checks(results) + "\n" + _cost_check(times))
    base = times[0][4]
    t_rows = [[*row, row[2] / base if row[1] != "-" else float("nan"), row[4] / base]
              for row in times]
    parts.append("**Step time** (median per step kind, one process, batch as trained; "
                 "amortised = mean over a whole meta period)\n\n" +
                 markdown_table(["step", "meta every", "ms meta step", "ms other step",
                                 "ms amortised", "meta step × plain", "amortised × plain"],
                                t_rows))
    s_rows = [[p, results[p]["seconds"]] for p in presets]
    parts.append("**Training wall time** (s, includes per-subset evaluation)\n\n" +
                 markdown_table(["preset", "seconds"], s_rows))
    return "\n\n".join(parts)


def _cost_check(times: list[list[Any]]) -> str:
    """The issue's budget: a look-ahead PTA step ≤ 2.5× a plain multimodal step."""
    plain = times[0][4]
    default = next(row for row in times if "(default)" in str(row[0]))
    amortised, meta = default[4] / plain, default[2] / plain
    verdict = "within" if amortised <= 2.5 else "NOT within"
    return (f"- PTA step (default look-ahead) costs {amortised:.2f}x a plain step amortised "
            f"over its meta period, {meta:.2f}x on the meta step itself ({verdict} the 2.5x "
            f"budget, amortised)")


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
