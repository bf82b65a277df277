"""Throughput and latency against offered load, from the results of `bench/run.py --sweep`.

    .venv/bin/pip install -e '.[bench]'      # matplotlib
    .venv/bin/python bench/run.py --target both --sweep 100 200 300 400 600 --duration 20
    .venv/bin/python bench/plot.py           # reads bench/results/e2e_*_sweep.json

Left: webhooks per second received against DMs per second offered (the diagonal is keeping up).
Right: DM→webhook latency p50 (dashed) and p99 (solid), log scale, with the 25 ms p99 target.
One line per system (convohook per database and history, the relay). Writes
docs/img/perf-load.png.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib
import orjson

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

from common import RESULTS, ROOT

P99_TARGET_MS = 25.0


def _minor_label(value: float, _: object) -> str:
    return f"{value:g}" if f"{value:g}"[0] in "25" else ""


def series_name(r: dict[str, Any]) -> str:
    if r["target"] == "relay":
        return "relay (limit)"
    split = ", split" if r.get("topology") == "split" else ""
    name = f"convohook{split}, {r['database']}"
    return name + (f", history {r['history']:,}" if r.get("history") else "")


def load_points(paths: list[Path], batch: int | None) -> tuple[dict[str, list[Any]], str, int]:
    """Open-loop results by series, sorted by offered rate; the machine; the batch plotted."""
    results: list[dict[str, Any]] = []
    machine = ""
    for path in paths:
        document = orjson.loads(path.read_bytes())
        m = document.get("machine", {})
        machine = machine or f"{m.get('cpu_model')}, {m.get('cpus')} CPUs, Python {m.get('python')}"
        results += [r for r in document["results"] if r["mode"] == "open"]
    if not results:
        raise SystemExit(f"no open-loop results in {', '.join(map(str, paths))}: run with --sweep")
    chosen = batch if batch is not None else min(r["batch"] for r in results)
    by_series: dict[str, list[Any]] = defaultdict(list)
    for r in results:
        if r["batch"] == chosen:
            by_series[series_name(r)].append(r)
    for points in by_series.values():
        points.sort(key=lambda r: r["rate"])
    return by_series, machine, chosen


def plot(by_series: dict[str, list[Any]], machine: str, batch: int, out: Path) -> None:
    fig, (throughput, latency) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    top = 0.0
    for i, (name, points) in enumerate(sorted(by_series.items())):
        color = f"C{i}"
        offered = [r["rate"] for r in points]
        top = max(top, *offered)
        throughput.plot(offered, [r["events_per_s"] for r in points], "o-", color=color, label=name)
        p50 = [r["e2e_ms"]["p50"] for r in points]
        p99 = [r["e2e_ms"]["p99"] for r in points]
        latency.plot(offered, p99, "o-", color=color, label=f"{name} p99")
        latency.plot(offered, p50, "s--", color=color, alpha=0.7, label=f"{name} p50")
    throughput.plot([0, top], [0, top], ":", color="grey", label="offered")
    throughput.set_xlabel("offered load (DMs/s)")
    throughput.set_ylabel("Conversation Opened received (events/s)")
    throughput.set_title("Throughput")
    throughput.set_xlim(left=0)
    throughput.set_ylim(bottom=0)
    throughput.grid(alpha=0.3)
    throughput.legend(fontsize="small")
    latency.axhline(P99_TARGET_MS, color="red", linewidth=0.8, linestyle=":")
    latency.annotate(
        f"p99 target {P99_TARGET_MS:g} ms",
        (0, P99_TARGET_MS),
        xytext=(4, 3),
        textcoords="offset points",
        color="red",
        fontsize="small",
    )
    latency.set_yscale("log")
    # Plain numbers (2, 5, 10, 20, 50 ms…) rather than 10^x: these axes are read, not admired.
    latency.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    latency.yaxis.set_minor_formatter(FuncFormatter(_minor_label))
    latency.set_xlabel("offered load (DMs/s)")
    latency.set_ylabel("DM posted → webhook received (ms)")
    latency.set_title("Latency")
    latency.set_xlim(left=0)
    latency.grid(alpha=0.3, which="both")
    latency.legend(fontsize="small")
    dms = f"{batch} DM" + ("s" if batch > 1 else "")
    fig.suptitle(f"convohook end to end, open loop, {dms} per notification — {machine}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", nargs="*", type=Path, help="results JSON of run.py --sweep")
    parser.add_argument("--batch", type=int, help="which batch size to plot (default: smallest)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "perf-load.png")
    args = parser.parse_args()
    paths = args.results or sorted(RESULTS.glob("e2e_*_sweep*.json"))
    if not paths:
        raise SystemExit(f"no results given and none in {RESULTS}: run bench/run.py --sweep first")
    by_series, machine, batch = load_points(paths, args.batch)
    plot(by_series, machine, batch, args.out)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
