"""What every part of the end-to-end benchmark agrees on: names, ids, secrets, paths, errors.

Customers are numbered. Customer `i` writes from IGSID `66` + i on 14 digits and is called `u{i}`
on Instagram, so the Graph API stand-in can answer for any of them without being told, and the
subscriber can tell from a delivery's `"from"` which DM caused it. Customers of the pre-populated
history are `55` + i and `h{i}`: they never write during a measurement.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
# The console scripts of the venv running the harness (`.venv/bin/convohook`).
BIN = Path(sys.executable).parent
CONVOHOOK = BIN / "convohook"

APP_SECRET = "bench-app-secret"
ACCOUNT = "17841400000424242"  # the business's Instagram account (entry[].id)
HANDLE = "bench"  # the business's username, `"to"` of every delivery
ACCESS_TOKEN = "bench-token"
GRAPH_VERSION = "v24.0"

_CUSTOMER_PREFIX = "66"
_HISTORY_PREFIX = "55"
_DIGITS = 14


class BenchError(Exception):
    """A benchmark step failed; the message says which, and how to find out why."""


def customer_igsid(i: int) -> str:
    return f"{_CUSTOMER_PREFIX}{i:0{_DIGITS}d}"


def customer_username(i: int) -> str:
    return f"u{i}"


def customer_name(i: int) -> str:
    return f"Customer {i}"


def history_igsid(i: int) -> str:
    return f"{_HISTORY_PREFIX}{i:0{_DIGITS}d}"


def history_username(i: int) -> str:
    return f"h{i}"


def profile_for(igsid: str) -> tuple[str, str] | None:
    """(username, name) of a benchmark customer's IGSID, or None for any other IGSID."""
    if len(igsid) != len(_CUSTOMER_PREFIX) + _DIGITS or not igsid.isdigit():
        return None
    i = int(igsid[len(_CUSTOMER_PREFIX) :])
    if igsid.startswith(_CUSTOMER_PREFIX):
        return customer_username(i), customer_name(i)
    if igsid.startswith(_HISTORY_PREFIX):
        return history_username(i), f"History {i}"
    return None


def customer_index(username: str) -> int | None:
    """i of `u{i}`, or None when the username is not a benchmark customer's."""
    digits = username[1:]
    if username[:1] != "u" or not digits.isdigit():
        return None
    return int(digits)


def free_port() -> int:
    """A port free right now on 127.0.0.1 (another process could take it before we bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def machine_info() -> dict[str, object]:
    """What the figures were measured on, as recorded beside them."""
    cpu_model = "unknown"
    mem_total_mb = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total_mb = int(line.split()[1]) // 1024
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_total_mb": mem_total_mb,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
