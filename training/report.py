"""Per-subset tables (text, Markdown, JSON) and plots (PNG, matplotlib Agg)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .evaluate import mean_row

_COLUMNS = (("mpjpe_mm", "MPJPE (mm)", "{:.1f}"), ("pa_mpjpe_mm", "PA-MPJPE (mm)", "{:.1f}"),
            ("action_top1", "top-1", "{:.3f}"))


def table_rows(metrics: Mapping[str, Mapping[str, float]]) -> tuple[list[str], list[list[str]]]:
    cols = [c for c in _COLUMNS if all(c[0] in r for r in metrics.values())]
    headers = ["subset"] + [c[1] for c in cols]
    rows = [[name] + [fmt.format(row[key]) for key, _, fmt in cols]
            for name, row in metrics.items()]
    mean = mean_row(dict(metrics))
    rows.append(["mean"] + [fmt.format(mean[key]) for key, _, fmt in cols])
    return headers, rows


def markdown_table(metrics: Mapping[str, Mapping[str, float]]) -> str:
    headers, rows = table_rows(metrics)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def text_table(metrics: Mapping[str, Mapping[str, float]]) -> str:
    headers, rows = table_rows(metrics)
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r) for r in [headers, *rows])


def write_reports(run: Path, metrics: Mapping[str, Mapping[str, float]],
                  weights: Mapping[str, float], extra: Mapping[str, Any]) -> None:
    doc = {"subsets": dict(metrics), "mean": mean_row(dict(metrics)), "weights": dict(weights),
           **extra}
    (run / "metrics.json").write_text(json.dumps(doc, indent=2))
    (run / "metrics.md").write_text(markdown_table(metrics) + "\n")


def write_plots(run: Path, metrics: Mapping[str, Mapping[str, float]],
                history: Mapping[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = run / "plots"
    out.mkdir(parents=True, exist_ok=True)
    paths = [_bars(plt, out / "subsets.png", metrics)]
    if history.get("weights"):
        paths.append(_weights(plt, out / "weights.png", history["weights"]))
    if history.get("losses"):
        paths.append(_losses(plt, out / "losses.png", history["losses"]))
    return paths


def _bars(plt: Any, path: Path, metrics: Mapping[str, Mapping[str, float]]) -> Path:
    names = list(metrics)
    fig, ax = plt.subplots(figsize=(max(6, len(names) * 0.9), 4))
    xs = range(len(names))
    for off, key, label in ((-0.2, "mpjpe_mm", "MPJPE"), (0.2, "pa_mpjpe_mm", "PA-MPJPE")):
        if all(key in metrics[n] for n in names):
            ax.bar([x + off for x in xs], [metrics[n][key] for n in names], width=0.4, label=label)
    ax.set_xticks(list(xs), names, rotation=30, ha="right")
    ax.set_ylabel("mm")
    ax.set_title("Per-subset error (lower is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _weights(plt: Any, path: Path, weights: Sequence[Mapping[str, float]]) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in weights[0]:
        ax.plot(range(len(weights)), [w[m] for w in weights], marker="o", label=m)
    ax.set_xlabel("epoch")
    ax.set_ylabel("purified weight softmax(θ)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _losses(plt: Any, path: Path, losses: Sequence[Mapping[str, float]]) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in losses[0]:
        vals = [row[key] for row in losses if key in row]
        if all(v > 0 for v in vals):
            ax.plot(range(1, len(vals) + 1), vals, label=key)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
