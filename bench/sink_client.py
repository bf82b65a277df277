"""The harness's handle on the sink process (bench/sink.py): start it, ask it, stop it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

import procs
from common import BENCH, GRAPH_VERSION, BenchError

READY_TIMEOUT_S = 20.0
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=120)  # collect checks every signature: allow time
POLL_S = 0.1


@dataclass
class Sink:
    proc: subprocess.Popen[bytes]
    log: Path
    graph: str  # the stand-in's root, http://127.0.0.1:P
    hook: str  # the subscriber's URL, for webhooks

    @property
    def graph_api_url(self) -> str:
        return f"{self.graph}/{GRAPH_VERSION}"

    @property
    def base(self) -> str:
        return self.hook.rsplit("/", 1)[0]

    async def count(self, http: aiohttp.ClientSession) -> int:
        async with http.get(f"{self.base}/_sink/count") as response:
            data = await response.json()
            return int(data["count"])

    async def wait_for(
        self, expected: int, *, timeout: float, stall: float, target: str, log: Path
    ) -> int:
        """Wait until `expected` deliveries arrived; give up after `timeout` s, or `stall` s with
        none arriving. Returns how many arrived."""
        deadline = time.monotonic() + timeout
        last_change = time.monotonic()
        last = -1
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            while True:
                self.check_alive()
                try:
                    got = await self.count(http)
                except (TimeoutError, aiohttp.ClientError):
                    # A sink too busy to answer within 10 s (four `serve`s and the harness on
                    # two cores) is asked again; `stall` still bounds the wait.
                    got = max(last, 0)
                now = time.monotonic()
                if got >= expected:
                    return got
                if got != last:
                    last, last_change = got, now
                if now > deadline or now - last_change > stall:
                    why = (
                        f"after {timeout:g} s"
                        if now > deadline
                        else f"and none arrived for {stall:g} s"
                    )
                    print(
                        f"  ! {expected - got} of {expected} deliveries missing {why}; the last "
                        f"lines of {target}'s log ({log}):\n{procs.tail(log, 15)}",
                        file=sys.stderr,
                    )
                    return got
                await asyncio.sleep(POLL_S)

    async def collect(self, secret: str | None) -> dict[str, Any]:
        """The stamps since the last collect, with the checks of every delivery; resets them."""
        self.check_alive()
        async with (
            aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http,
            http.post(f"{self.base}/_sink/collect", data=orjson.dumps({"secret": secret})) as r,
        ):
            if r.status != 200:
                raise BenchError(f"the sink's collect answered {r.status}: {await r.text()}")
            result: dict[str, Any] = orjson.loads(await r.read())
            return result

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(
                f"the sink exited with code {self.proc.returncode}; its log ({self.log}):\n"
                f"{procs.tail(self.log)}"
            )

    def stop(self) -> None:
        procs.stop(self.proc)


async def start_sink(workdir: Path) -> Sink:
    log = workdir / "sink.log"
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, str(BENCH / "sink.py")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), READY_TIMEOUT_S)
    except TimeoutError:
        procs.stop(proc)
        raise BenchError(
            f"the sink did not say it was ready in {READY_TIMEOUT_S:g} s; its log ({log}):\n"
            f"{procs.tail(log)}"
        ) from None
    try:
        ready = orjson.loads(line)
    except orjson.JSONDecodeError:
        procs.stop(proc)
        raise BenchError(
            f"the sink printed {line[:200]!r} instead of its ports; its log ({log}):\n"
            f"{procs.tail(log)}"
        ) from None
    return Sink(proc, log, ready["graph"], ready["hook"])
