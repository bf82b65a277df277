"""End to end, DM posted to webhook received, for convohook and for the limit (a bare relay).

    .venv/bin/python bench/run.py --target both --batch 1 10 --customers 3000   # closed loop
    .venv/bin/python bench/run.py --target both --rate 300 --duration 30        # open loop
    .venv/bin/python bench/run.py --target both --sweep 100 200 300 400 600     # then plot.py
    .venv/bin/python bench/run.py --target convohook --batch 10 --history 1000 1000000
    .venv/bin/python bench/run.py --target convohook --batch 10 --customers 100000
    .venv/bin/python bench/run.py --target convohook --batch 1 --sweep 300 300 300 --bots 0 3
    (add --database postgresql for PostgreSQL, and --serves 2 for two `serve` processes on it)

Processes: this harness plays Meta; bench/sink.py (its own process) is the Graph API stand-in
and the subscriber that stamps every delivery; the target is `convohook serve` (on a fresh copy
of a prepared database) or bench/relay.py. Each measurement: start the target, send --warmup DMs
and wait for their webhooks (not counted), then the measured DMs, closed loop (--concurrency
POSTs in flight) or open loop (--rate DMs/s on a fixed schedule), wait for every webhook, read
the target's CPU and peak memory, stop it. Prints a Markdown table and writes
bench/results/<name>.json after every measurement. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
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
import stages
import targets
from common import RESULTS, BenchError, machine_info
from measure import Customers, Plan, measure
from sink_client import Sink, start_sink


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--target", choices=["convohook", "relay", "both"], default="both")
    p.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument(
        "--topology",
        choices=["one", "split"],
        default="one",
        help="one: `serve` with its workers (the default setup); split: `serve --no-worker` "
        "and a `convohook worker` (two processes, two interpreter locks)",
    )
    p.add_argument(
        "--serves",
        type=int,
        default=1,
        help="PostgreSQL: this many `serve` processes on the one database, each with its "
        "workers, Meta's POSTs spread over them round robin (the README's one per core)",
    )
    p.add_argument("--batch", type=int, nargs="+", default=[1, 10], help="DMs per notification")
    p.add_argument(
        "--customers",
        type=int,
        help="DMs measured, each from a brand-new customer (default: 3000 closed loop, "
        "rate x duration open loop)",
    )
    p.add_argument("--concurrency", type=int, default=64, help="closed loop: POSTs in flight")
    p.add_argument("--rate", type=float, help="open loop: DMs/s offered (omit: closed loop)")
    p.add_argument("--duration", type=float, default=10.0, help="open loop: seconds of load")
    p.add_argument("--sweep", type=float, nargs="+", help="open loop at each of these DMs/s")
    p.add_argument(
        "--history",
        type=int,
        nargs="+",
        default=[0],
        help="existing contacts and conversations before the run (one template each)",
    )
    p.add_argument(
        "--bots",
        type=int,
        nargs="+",
        default=[0],
        help="enabled bots on conversation.opened (bench/bots.py: greet + assign, tag, one "
        "whose condition fails); several values alternate, e.g. --bots 0 3",
    )
    p.add_argument(
        "--history-outbox",
        action="store_true",
        help="give the history its events, deliveries and attempts too",
    )
    p.add_argument("--warmup", type=int, default=300, help="DMs before the clock starts")
    p.add_argument("--timeout", type=float, default=1800.0, help="max seconds to wait for webhooks")
    p.add_argument("--stall", type=float, default=30.0, help="give up after this long with none")
    p.add_argument("--name", help="results file: bench/results/<name>.json")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    args = p.parse_args(argv)
    if args.rate is not None and args.sweep:
        p.error("--rate and --sweep exclude each other")
    for option, values in (
        ("--batch", args.batch),
        ("--history", args.history),
        ("--bots", args.bots),
    ):
        if any(v < (1 if option == "--batch" else 0) for v in values):
            p.error(f"{option} values must be positive")
    if args.serves < 1 or (args.serves > 1 and args.database != "postgresql"):
        p.error("--serves takes a positive number, and more than 1 only with PostgreSQL")
    if args.target == "relay" and (args.history != [0] or args.bots != [0]):
        p.error("--history and --bots only apply to convohook")
    return args


def default_name(args: argparse.Namespace) -> str:
    if args.sweep:
        mode = "sweep"
    elif args.rate is not None:
        mode = f"rate{args.rate:g}"
    else:
        mode = "closed"
    name = f"e2e_{args.database}_{mode}"
    if args.history != [0]:
        name += "_h" + "-".join(str(h) for h in args.history)
    if args.bots != [0]:
        name += "_bots" + "-".join(str(b) for b in args.bots)
    return name


def plans(args: argparse.Namespace) -> list[Plan]:
    rates: list[float | None] = list(args.sweep) if args.sweep else [args.rate]
    made = []
    for batch in args.batch:
        for rate in rates:
            if args.customers is not None:
                customers = args.customers
            elif rate is None:
                customers = 3000
            else:
                customers = max(batch, round(rate * args.duration))
            made.append(
                Plan(
                    batch=batch,
                    customers=customers,
                    concurrency=args.concurrency,
                    rate=rate,
                    warmup=args.warmup,
                    timeout=args.timeout,
                    stall=args.stall,
                )
            )
    return made


def describe(r: dict[str, Any]) -> str:
    e2e, inbound = r["e2e_ms"], r["inbound_ms"]
    return (
        f"{r['delivered']:,}/{r['accepted']:,} delivered, {r['events_per_s']:,.0f} events/s, "
        f"DM→webhook p50 {e2e['p50']} p99 {e2e['p99']} ms, inbound p99 {inbound['p99']} ms, "
        f"CPU {r['cpu_s']['target']} s ({r['cpu_ms_per_event']} ms/event), "
        f"peak RSS {r['peak_rss_mb']} MB"
    )


def describe_bots(b: dict[str, Any]) -> str:
    run, reply = b["run_done_after_dm_ms"], b["reply_sent_after_dm_ms"]
    return (
        f"bots: {b['runs']:,}/{b['runs_expected']:,} runs {b['run_statuses']}, run done "
        f"p50 {run['p50']} p99 {run['p99']} ms after the DM, reply sent p50 {reply['p50']} "
        f"p99 {reply['p99']} ms, replies {b['replies']} ({b['replies_received_by_graph']:,} "
        f"received, {b['replies_doubled']} doubled), webhook first {b['webhook_before_reply']:,}"
        f", reply first {b['reply_before_webhook']:,}, settled "
        f"{b['settle_after_last_webhook_s']} s after the last webhook, problems "
        f"{b['problems'] or 'none'}"
    )


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.dbs: targets.SQLiteDatabases | targets.PostgresDatabases = (
            targets.SQLiteDatabases(workdir)
            if args.database == "sqlite"
            else targets.PostgresDatabases()
        )
        self.customers = Customers()
        self.results: list[dict[str, Any]] = []
        self.out = RESULTS / f"{args.name or default_name(args)}.json"
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.runs = 0

    def save(self) -> None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        inherited = {
            k: v for k, v in os.environ.items() if k.startswith("CONVOHOOK_") and "SECRET" not in k
        }
        document = {
            "started": self.started,
            "machine": machine_info(),
            "command": " ".join(sys.argv),
            "inherited_env": inherited,
            "results": self.results,
        }
        self.out.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))

    async def one(self, sink: Sink, plan: Plan, template: targets.Template | None) -> None:
        self.runs += 1
        name = f"run{self.runs}"
        if template is None:
            label = "relay"
            running = await targets.start_relay(sink, self.workdir, name)
            dbs = None
        else:
            label = f"convohook ({self.dbs.dialect}, history {template.history['customers']:,}"
            label += f", {len(template.bot_ids)} bots)" if template.bot_ids else ")"
            running = await targets.start_convohook(
                self.dbs,
                template,
                sink,
                self.workdir,
                name,
                split=self.args.topology == "split",
                serves=self.args.serves,
            )
            dbs = self.dbs
        load = f"closed, {plan.concurrency} in flight" if plan.rate is None else f"{plan.rate:g}/s"
        print(f"{label}: batch {plan.batch}, {load}, {plan.customers:,} DMs…", flush=True)
        try:
            result = await measure(
                running,
                sink,
                plan,
                self.customers,
                dbs,
                template.bot_ids if template is not None else (),
            )
            if running.database_url is not None:
                # Before the database is dropped; after the measurement, so it costs it nothing.
                skip = -(-plan.warmup // plan.batch)  # the warm-up's notifications come first
                result["stages_ms"] = stages.read(running.database_url, skip)
        finally:
            targets.stop(running, dbs)
        if template is not None:
            result["database"] = self.dbs.dialect
            result["topology"] = self.args.topology
            result["serves"] = self.args.serves
            result["history"] = template.history["customers"]
            result["history_outbox"] = template.history["outbox"]
            result["history_build_s"] = template.history["seconds"]
            result["bots_enabled"] = len(template.bot_ids)
        else:
            result["database"] = None
            result["history"] = None
        print(f"  {describe(result)}", flush=True)
        if result.get("stages_ms"):
            print(f"  stages: {stages.describe(result['stages_ms'])}", flush=True)
        if result.get("bots"):
            print(f"  {describe_bots(result['bots'])}", flush=True)
        self.results.append(result)
        self.save()

    async def run(self) -> None:
        args = self.args
        sink = await start_sink(self.workdir)
        try:
            templates: list[targets.Template] = []
            if args.target in ("convohook", "both"):
                for size in args.history:
                    for bots in args.bots:
                        templates.append(
                            await targets.build_template(
                                self.dbs,
                                sink,
                                self.workdir,
                                size,
                                outbox=args.history_outbox,
                                bots=bots,
                            )
                        )
            for plan in plans(args):
                for template in templates:
                    await self.one(sink, plan, template)
                if args.target in ("relay", "both"):
                    await self.one(sink, plan, None)
        finally:
            sink.stop()
            if isinstance(self.dbs, targets.PostgresDatabases):
                self.dbs.drop_all()


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="convohook-bench-"))
    bench = Bench(args, workdir)
    failed = True
    try:
        await bench.run()
        failed = False
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep or failed:
            print(f"(work directory kept: {workdir})", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        if bench.results:
            print()
            print(report.render(bench.results))
            print(f"\nwritten: {bench.out.relative_to(RESULTS.parent.parent)}")
    return 0


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        sys.exit(runner.run(main()))
