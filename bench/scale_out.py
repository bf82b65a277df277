"""Events per second end to end on PostgreSQL with 1, 2 and 4 worker processes.

    .venv/bin/python bench/scale_out.py --workers 1 2 4 --customers 3000

For each worker count: a fresh database, one `serve --no-worker`, N `convohook worker`
processes, a Graph API stand-in and a subscriber in this process. Meta's side posts every DM
(batches of --batch customers per notification, as Meta batches under load) as fast as the API
takes them; the clock runs from the first POST to the last Conversation Opened received.
Writes bench/results/scale_out.json and prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from convohook.devtools.graph_standin import ProfileRegistry, create_graph_standin
from convohook.meta import notifications as n

from harness import Api, Meta, Receiver, free_socket, run_receiver, serve_asgi, wait_healthy

CONVOHOOK = Path(sys.executable).parent / "convohook"
SECRET = "bench-app-secret"
ACCOUNT = "17841400000424242"
ADMIN = os.environ.get(
    "CONVOHOOK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def igsid(i: int) -> str:
    return f"66{i:014d}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)


async def run(workers: int, customers: int, batch: int) -> dict[str, Any]:
    name = f"convohook_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    registry = ProfileRegistry()
    for i in range(customers):
        registry.put(igsid(i), f"user{i}", f"User {i}")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        async with (
            serve_asgi(create_graph_standin(registry), free_socket()) as graph,
            run_receiver(Receiver()) as receiver,
        ):
            env = {
                **os.environ,
                "CONVOHOOK_DATABASE_URL": url,
                "CONVOHOOK_META_APP_SECRET": SECRET,
                "CONVOHOOK_GRAPH_API_URL": f"{graph}/v24.0",
                "CONVOHOOK_ALLOW_PRIVATE_TARGETS": "1",
            }
            sock = free_socket()
            port = sock.getsockname()[1]
            sock.close()
            procs.append(
                subprocess.Popen(
                    [str(CONVOHOOK), "serve", "--no-worker", "--port", str(port)],
                    env=env,
                    stderr=subprocess.DEVNULL,
                )
            )
            base = f"http://127.0.0.1:{port}"
            await wait_healthy(base)
            org = json.loads(
                subprocess.run(
                    [str(CONVOHOOK), "orgs", "create", "--name", "bench"],
                    env=env,
                    capture_output=True,
                    check=True,
                ).stdout
            )
            api = Api(base, org["api_key"])
            channel = await api.ok(
                "POST",
                "/api/v1/channels",
                {
                    "type": "INSTAGRAM",
                    "handle": "bench",
                    "account_id": ACCOUNT,
                    "access_token": "t",
                },
            )
            await api.ok(
                "POST",
                "/api/v1/webhooks",
                {
                    "name": "b",
                    "url": receiver.url,
                    "channel_ids": [channel["id"]],
                    "events": ["conversation.opened"],
                },
            )
            for _ in range(workers):
                procs.append(
                    subprocess.Popen(
                        [str(CONVOHOOK), "worker"],
                        env=env,
                        stderr=subprocess.DEVNULL,
                    )
                )
            await asyncio.sleep(2)  # workers connected and listening
            now = int(time.time() * 1000)
            bodies = [
                n.encode(
                    n.notification(
                        [
                            n.entry(
                                ACCOUNT,
                                [
                                    n.text_message(igsid(i), ACCOUNT, f"bm-{i}", now, "hi")
                                    for i in range(start, min(start + batch, customers))
                                ],
                            )
                        ]
                    )
                )
                for start in range(0, customers, batch)
            ]
            meta = Meta(base, SECRET)
            sem = asyncio.Semaphore(16)

            async def post(body: bytes) -> None:
                async with sem:
                    assert await meta.post(body) == 200

            started = time.perf_counter()
            await asyncio.gather(*(post(b) for b in bodies))
            posted = time.perf_counter() - started
            await receiver.wait_for(customers, timeout=600)
            elapsed = time.perf_counter() - started
            cpu = {
                "serve": cpu_seconds(procs[0].pid),
                "workers": round(sum(cpu_seconds(p.pid) for p in procs[1:]), 2),
                "harness": round(time.process_time(), 2),
            }
            return {
                "workers": workers,
                "customers": customers,
                "batch": batch,
                "inbound_s": round(posted, 2),
                "elapsed_s": round(elapsed, 2),
                "events_per_s": round(customers / elapsed, 1),
                "cpu_s": cpu,
            }
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=10)
    args = parser.parse_args()
    results = [await run(w, args.customers, args.batch) for w in args.workers]
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    machine = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    (out / "scale_out.json").write_text(
        json.dumps({"machine": machine, "results": results}, indent=2)
    )
    print(
        "| workers | new customers | inbound done (s) | all delivered (s) | events/s end to end |"
    )
    print("|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['workers']} | {r['customers']} | {r['inbound_s']} | {r['elapsed_s']} "
            f"| {r['events_per_s']} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
