"""The far side of the benchmark, in its own process: the Graph API stand-in and the subscriber.

    .venv/bin/python bench/sink.py      # prints {"graph": ..., "hook": ..., "pid": ...} when ready

The stand-in is convohook's own (`create_graph_standin`) over a registry that knows every
benchmark customer without being told (customer i is `u{i}`, see common.py), on uvicorn. The
subscriber is an aiohttp endpoint that stamps every delivery with `time.monotonic_ns()` the
moment its handler runs, keeps the bytes and the signature headers, and answers 200 at once.
CLOCK_MONOTONIC is one clock for the whole machine, so the harness subtracts its own stamps
(taken when it POSTed each DM) from these.

Nothing is verified while the clock runs. `POST /_sink/collect {"secret": "whsec_…"}` hands over
the stamps of everything received since the last collect, then checks every delivery: the body
is DoubleTick's (keys in order, `"to"` the business), the `webhook-signature` is the one the
public `standardwebhooks` library computes, and the timestamp was within 5 minutes of arrival.
(The library's `verify()` would compare the timestamp with the time of the check, minutes later
after a long run, so its `sign()` is used and the age is checked against the arrival time.)

    GET  /_sink/count     {"count": deliveries received since the last collect}
    POST /_sink/collect   {"stamps": {username: ns}, "received", "duplicates", ...}
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hmac
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import orjson
import uvloop
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from convohook.devtools.graph_standin import ProfileRegistry, create_graph_standin
from convohook.domain.payload import CustomerProfile

from common import HANDLE, profile_for
from harness import free_socket, serve_asgi

# DoubleTick's Conversation Opened body, keys in this order (README).
DOUBLETICK_KEYS = (
    "to",
    "from",
    "handle",
    "contact",
    "channelType",
    "customerName",
    "dtCustomerId",
    "channelHandle",
    "customerPhone",
    "integrationType",
    "conversationOpened",
)
TOLERANCE_S = 300  # Standard Webhooks' window for webhook-timestamp


class BenchProfiles(ProfileRegistry):
    """A registry that knows every benchmark customer; profiles PUT by hand still win."""

    def get(self, igsid: str) -> CustomerProfile | None:
        found = super().get(igsid)
        if found is not None:
            return found
        derived = profile_for(igsid)
        return CustomerProfile(username=derived[0], name=derived[1]) if derived else None


@dataclass(slots=True)
class Delivery:
    stamp_ns: int
    body: bytes
    msg_id: str
    timestamp: str
    signature: str


@dataclass
class Subscriber:
    deliveries: list[Delivery] = field(default_factory=list)
    # Wall clock = monotonic + offset, to date arrivals for the timestamp check.
    wall_offset_ns: int = field(default_factory=lambda: time.time_ns() - time.monotonic_ns())

    async def hook(self, request: web.Request) -> web.Response:
        stamp = time.monotonic_ns()
        body = await request.read()
        headers = request.headers
        self.deliveries.append(
            Delivery(
                stamp,
                body,
                headers.get("webhook-id", ""),
                headers.get("webhook-timestamp", ""),
                headers.get("webhook-signature", ""),
            )
        )
        return web.Response(text="ok")

    async def count(self, request: web.Request) -> web.Response:
        return web.json_response({"count": len(self.deliveries)})

    async def collect(self, request: web.Request) -> web.Response:
        params = orjson.loads(await request.read() or b"{}")
        taken, self.deliveries = self.deliveries, []
        report = check(taken, params.get("secret"), self.wall_offset_ns)
        return web.Response(body=orjson.dumps(report), content_type="application/json")


def check(deliveries: list[Delivery], secret: str | None, wall_offset_ns: int) -> dict[str, Any]:
    """First arrival per customer, and everything wrong with what arrived."""
    stamps: dict[str, int] = {}
    seen_ids: set[str] = set()
    duplicates = repeated_customers = bad_bodies = bad_signatures = verified = 0
    problems: list[str] = []
    verifier = Webhook(secret) if secret else None

    def problem(text: str) -> None:
        if len(problems) < 5:
            problems.append(text)

    for d in deliveries:
        if d.msg_id in seen_ids:
            duplicates += 1
            continue
        seen_ids.add(d.msg_id)
        try:
            data = orjson.loads(d.body)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or tuple(data) != DOUBLETICK_KEYS or data["to"] != HANDLE:
            bad_bodies += 1
            problem(f"not DoubleTick's body: {d.body[:200]!r}")
            continue
        username = str(data["from"])
        if username in stamps:
            repeated_customers += 1
        else:
            stamps[username] = d.stamp_ns
        if verifier is None:
            continue
        why = signature_problem(verifier, d, wall_offset_ns)
        if why is None:
            verified += 1
        else:
            bad_signatures += 1
            problem(f"{d.msg_id}: {why}")
    return {
        "stamps": stamps,
        "received": len(deliveries),
        "duplicates": duplicates,
        "repeated_customers": repeated_customers,
        "bad_bodies": bad_bodies,
        "verified": verified,
        "bad_signatures": bad_signatures,
        "problems": problems,
    }


def signature_problem(verifier: Webhook, d: Delivery, wall_offset_ns: int) -> str | None:
    if not (d.msg_id and d.timestamp and d.signature):
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        sent_s = int(d.timestamp)
    except ValueError:
        return f"webhook-timestamp {d.timestamp!r} is not an integer"
    arrived_s = (d.stamp_ns + wall_offset_ns) / 1e9
    if abs(arrived_s - sent_s) > TOLERANCE_S:
        return f"webhook-timestamp {sent_s} is {arrived_s - sent_s:.0f} s off its arrival"
    expected = verifier.sign(d.msg_id, datetime.fromtimestamp(sent_s, tz=UTC), d.body.decode())
    wanted = base64.b64decode(expected.split(",", 1)[1])
    for entry in d.signature.split(" "):
        version, _, encoded = entry.partition(",")
        if version == "v1" and hmac.compare_digest(wanted, base64.b64decode(encoded)):
            return None
    return "no v1 signature matches the secret"


async def main(host: str) -> None:
    subscriber = Subscriber()
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/hook", subscriber.hook)
    app.router.add_get("/_sink/count", subscriber.count)
    app.router.add_post("/_sink/collect", subscriber.collect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0, backlog=1024)
    await site.start()
    hook_port = runner.addresses[0][1]
    graph_socket = free_socket()
    try:
        async with serve_asgi(create_graph_standin(BenchProfiles()), graph_socket) as graph:
            ready = {"graph": graph, "hook": f"http://{host}:{hook_port}/hook", "pid": os.getpid()}
            print(orjson.dumps(ready).decode(), flush=True)
            await asyncio.Event().wait()  # until SIGTERM
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main(args.host))
