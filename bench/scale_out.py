"""Scale-out on PostgreSQL: N `convohook serve` processes, each with its workers, on one database.

    .venv/bin/python bench/scale_out.py --serves 1 2 4 --customers 3000

For each N: a fresh copy of one template database (bench/targets.py), N `serve` processes on it,
the sink (bench/sink.py: Graph API stand-in and subscriber) and this harness playing Meta, its
POSTs spread over the N processes round robin as a load balancer would (closed loop,
--concurrency in flight; bench/load.py). --warmup DMs first, not counted; then --customers DMs,
each from a brand-new customer, --batch per notification (bench/measure.py).

Per N: openings/s end to end (first POST to last Conversation Opened received), when the inbound
POSTs were done and when everything was delivered, the CPU of the N serve processes and of the
PostgreSQL backends connected to the database (/proc/PID/stat, read before the first measured
POST and after the last delivery), CPU per opening = (serve + backends) / openings, and its ratio
to the first N's. Every delivery is checked (one Conversation Opened per customer, DoubleTick's
body, the `standardwebhooks` signature); anything wrong is printed under Problems and the exit
status is 1. Writes bench/results/scale_out.json, prints a Markdown table for
docs/performance.md and an extrapolation to --cores cores.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
import uvloop

import report
import targets
from common import RESULTS, BenchError, machine_info
from measure import Customers, Plan, measure
from sink_client import Sink, start_sink

LATE_S = 2.0  # after the last expected delivery: anything arriving now is one too many
OUT = RESULTS / "scale_out.json"
MODEL = (
    "Extrapolation, not a measurement: openings/s ≈ cores ÷ CPU per opening (the serve "
    "processes and their PostgreSQL backends, as measured with N serves here), assuming Meta's "
    "side, the Graph API and the subscriber run elsewhere (this harness's and the sink's CPU "
    "are left out), enough serve processes and load to keep every core busy, and that CPU per "
    "opening stays what it was at N (it grows with contention). PostgreSQL's background "
    "processes (WAL writer, checkpointer, autovacuum), disk, network and locks on the one "
    "database are not in it."
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--serves", type=int, nargs="+", default=[1, 2, 4], help="serve processes")
    p.add_argument("--customers", type=int, default=3000, help="DMs measured, one per customer")
    p.add_argument("--batch", type=int, default=10, help="DMs per notification")
    p.add_argument("--concurrency", type=int, default=64, help="POSTs in flight")
    p.add_argument("--warmup", type=int, default=200, help="DMs before the clock starts")
    p.add_argument("--cores", type=int, default=16, help="cores of the extrapolated box")
    p.add_argument("--timeout", type=float, default=600.0, help="max seconds to wait for webhooks")
    p.add_argument("--stall", type=float, default=30.0, help="give up after this long with none")
    args = p.parse_args(argv)
    if min(args.serves) < 1 or args.customers < 1 or args.batch < 1:
        p.error("--serves, --customers and --batch must be positive")
    return args


async def one(
    n: int,
    dbs: targets.PostgresDatabases,
    template: targets.Template,
    sink: Sink,
    workdir: Path,
    plan: Plan,
    customers: Customers,
) -> dict[str, Any]:
    """N serves on a fresh database: measure, then wait LATE_S for deliveries that should not
    come."""
    running = await targets.start_convohook(
        dbs, template, sink, workdir, f"serves{n}", split=False, serves=n
    )
    try:
        r = await measure(running, sink, plan, customers, dbs)
        await asyncio.sleep(LATE_S)
        late = await sink.collect(running.webhook_secret)
    finally:
        targets.stop(running, dbs)
    r.update(serves=n, database="postgresql", history=0, late_deliveries=late["received"])
    cpu = r["cpu_s"]["target"] + (r["cpu_s"]["database"] or 0.0)
    r["cpu_ms_per_opening"] = round(cpu / r["delivered"] * 1000, 2) if r["delivered"] else None
    return r


def problems(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in results:
        where = f"{r['serves']} serve(s)"
        if r["accepted"] != r["customers"]:
            lines.append(f"{where}: {r['customers'] - r['accepted']} DMs not accepted")
        if r["late_deliveries"]:
            lines.append(
                f"{where}: {r['late_deliveries']} more deliveries in the {LATE_S:g} s after "
                "every customer had one"
            )
        lines += [f"{where}: {line}" for line in report.problems([r])]
    return lines


def table(results: list[dict[str, Any]]) -> str:
    base = results[0]["cpu_ms_per_opening"]
    lines = [
        "| serve processes | openings | inbound done (s) | all delivered (s) | openings/s end to "
        "end | serve CPU (s) | PostgreSQL backends CPU (s) | CPU per opening (ms) "
        f"| ÷ N={results[0]['serves']} | harness + sink CPU (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cpu, per = r["cpu_s"], r["cpu_ms_per_opening"]
        ratio = f"{per / base:.2f}" if per and base else "-"
        lines.append(
            f"| {r['serves']} | {r['delivered']:,} | {r['inbound_done_s']} | {r['elapsed_s']} "
            f"| {r['events_per_s']:,.0f} | {cpu['target']} | {cpu['database']} | {per} "
            f"| {ratio} | {round(cpu['harness'] + cpu['sink'], 2)} |"
        )
    return "\n".join(lines)


def extrapolate(results: list[dict[str, Any]], cores: int) -> dict[str, Any]:
    rows = [
        {"serves": r["serves"], "openings_per_s": round(cores * 1000 / r["cpu_ms_per_opening"])}
        for r in results
        if r["cpu_ms_per_opening"]
    ]
    return {"cores": cores, "model": MODEL, "rows": rows}


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="convohook-scale-out-"))
    dbs = targets.PostgresDatabases()
    plan = Plan(
        batch=args.batch,
        customers=args.customers,
        concurrency=args.concurrency,
        rate=None,
        warmup=args.warmup,
        timeout=args.timeout,
        stall=args.stall,
    )
    document: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "command": " ".join(sys.argv),
        "results": [],
    }
    results: list[dict[str, Any]] = document["results"]
    sink: Sink | None = None
    failed = True
    try:
        sink = await start_sink(workdir)
        template = await targets.build_template(dbs, sink, workdir, 0, outbox=False)
        customers = Customers()
        for n in args.serves:
            print(f"{n} serve(s): batch {args.batch}, {args.customers:,} DMs…", flush=True)
            results.append(await one(n, dbs, template, sink, workdir, plan, customers))
            document["load_avg_end"] = machine_info()["load_avg"]
            document["extrapolation"] = extrapolate(results, args.cores)
            RESULTS.mkdir(parents=True, exist_ok=True)
            OUT.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
        failed = False
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
    finally:
        if sink is not None:
            sink.stop()
        dbs.drop_all()
        if failed:
            print(f"(work directory kept: {workdir})", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if not results:
        return 1
    machine = document["machine"]
    print(
        f"\n{machine['cpu_model']}, {machine['cpus']} CPUs, load average "
        f"{machine['load_avg']} at the start, {document['load_avg_end']} at the end\n"
    )
    print(table(results))
    model = document["extrapolation"]
    print(f"\n{model['cores']} cores: {model['model']}")
    for row in model["rows"]:
        print(
            f"- from the CPU per opening with {row['serves']} serve(s): "
            f"≈ {row['openings_per_s']:,} openings/s"
        )
    print()
    for r in results:
        backends = r["database_backends"] or {"read": 0, "gone": 0}
        gone = backends["gone"]
        left_out = f", {gone} exited during the run (their CPU not counted)" if gone else ""
        print(f"{r['serves']} serve(s): {backends['read']} PostgreSQL backends read{left_out}")
    found = problems(results)
    if found:
        print("\nProblems:\n" + "\n".join(f"- {line}" for line in found))
    print(f"\nwritten: {OUT.relative_to(RESULTS.parent.parent)}")
    return 1 if failed or found else 0


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        sys.exit(runner.run(main()))
