"""Child processes of the benchmark: start with a log file, wait until healthy, measure, stop.

CPU time and memory come from /proc (Linux): utime + stime of every thread of the process, and
VmHWM, the peak resident set size since it started.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp

from common import BenchError

TAIL_LINES = 40
STOP_TIMEOUT_S = 15.0


def start(
    cmd: Sequence[str], log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `cmd` with its stdout and stderr in `log`."""
    with log.open("ab") as out:
        try:
            return subprocess.Popen(
                list(cmd),
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            raise BenchError(f"could not start {' '.join(cmd)}: {exc}") from exc


def tail(log: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {log}: {exc})"
    kept = text.splitlines()[-lines:]
    return "\n".join(kept) if kept else "(the log is empty)"


def stop(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


async def wait_healthy(
    name: str, url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20.0
) -> None:
    """Wait until GET `url` answers 200; fail with the process's log if it exits or times out."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(
                    f"{name} exited with code {proc.returncode} before becoming healthy; "
                    f"its log ({log}):\n{tail(log)}"
                )
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.1)
    raise BenchError(
        f"{name} did not become healthy in {timeout:g} s (GET {url}: {last}); "
        f"its log ({log}):\n{tail(log)}"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, all its threads included."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the most memory the process has held resident since it started."""
    kb = _status_kb(pid, "VmHWM")
    return round(kb / 1024, 1) if kb is not None else None


def rss_mb(pid: int) -> float | None:
    kb = _status_kb(pid, "VmRSS")
    return round(kb / 1024, 1) if kb is not None else None
