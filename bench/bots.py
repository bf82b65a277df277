"""`--bots N`: Bot Studio journeys beside every opening (issue 16), and what they did.

Three realistic bots on conversation.opened, made through the API on the template (with the
three agents round robin hands conversations to):

1. a greeting: send_message "Hi {{name}}!" (names are unique here, so a reply sent twice
   shows), then assign round robin;
2. add_tags ["lead"];
3. a condition that does not hold (min_followers 1,000,000: the stand-in shares no follower
   count), so the run is skipped.

Every opening therefore gets N runs, decided in the opening's transaction and carried out by
the bot runner beside the hot path. After the webhooks arrived, `settle_and_check` waits until
no run is pending and no bot reply is queued or sending, then reads the database: runs per
opening and bot (exactly one each), their statuses, how long after the DM each run finished
and each reply was sent, whether the webhook arrived before the reply went out, and what the
Graph API stand-in received (no text twice).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson
import psycopg

from common import BenchError, customer_index, customer_name
from stats import summary_ms

GREETING = "Hi {{name}}!"
AGENTS = 3
SETTLE_TIMEOUT_S = 300.0
POLL_S = 0.25
API_TIMEOUT = aiohttp.ClientTimeout(total=30)


def definitions(count: int) -> list[dict[str, Any]]:
    """The first `count` of the three bots (cycling if more are asked for)."""
    kinds: list[dict[str, Any]] = [
        {
            "name": "greet and assign",
            "conditions": {},
            "actions": [
                {"type": "send_message", "text": GREETING},
                {"type": "assign", "strategy": "round_robin"},
            ],
        },
        {
            "name": "tag leads",
            "conditions": {},
            "actions": [{"type": "add_tags", "tags": ["lead"]}],
        },
        {
            "name": "big accounts",
            "conditions": {"min_followers": 1_000_000},
            "actions": [{"type": "add_tags", "tags": ["vip"]}],
        },
    ]
    made = []
    for k in range(count):
        bot = dict(kinds[k % len(kinds)])
        if k >= len(kinds):
            bot["name"] = f"{bot['name']} {k}"
        made.append({**bot, "trigger": "conversation.opened", "enabled": True})
    return made


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        async with http.post(url, json=body) as response:
            raw = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise BenchError(f"POST {url} failed: {type(exc).__name__}: {exc}") from None
    if status >= 300:
        raise BenchError(f"POST {url} answered {status}: {raw[:500]!r}")
    result: dict[str, Any] = orjson.loads(raw)
    return result


async def create(base: str, api_key: str, count: int, tag: str) -> list[str]:
    """The agents and `count` bots, through the API; the bots' ids, in order."""
    if count <= 0:
        return []
    headers = {"Authorization": f"Bearer {api_key}"}
    async with aiohttp.ClientSession(timeout=API_TIMEOUT, headers=headers) as http:
        for k in range(AGENTS):
            await _post(
                http,
                f"{base}/api/v1/agents",
                {"name": f"Agent {k}", "email": f"agent{k}-{tag}@bench.example"},
            )
        return [
            str((await _post(http, f"{base}/api/v1/bots", bot))["id"]) for bot in definitions(count)
        ]


def _query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    with psycopg.connect(database_url, connect_timeout=5) as pg:
        return pg.execute(sql).fetchall()


_OPEN_WORK = """
SELECT
  (SELECT COUNT(*) FROM bot_runs WHERE status = 'pending'),
  (SELECT COUNT(*) FROM outbound_messages
     WHERE sent_by = 'bot' AND status IN ('queued', 'sending'))
"""
_RUNS = """
SELECT c.username, r.bot_id, r.status, r.finished_at_ms, r.detail
FROM bot_runs r JOIN contacts c ON c.id = r.contact_id
"""
_REPLIES = """
SELECT c.username, o.status, o.sent_at_ms, o.text
FROM outbound_messages o JOIN contacts c ON c.id = o.contact_id
WHERE o.sent_by = 'bot'
"""
_TAGS = """
SELECT c.username, t.tag
FROM conversation_tags t JOIN conversations v ON v.id = t.conversation_id
JOIN contacts c ON c.id = v.contact_id
"""
_ASSIGNED = """
SELECT assignee_id, COUNT(*) FROM conversations
WHERE assignee_id IS NOT NULL GROUP BY assignee_id
"""


async def _sent_texts(graph_root: str) -> Counter[str]:
    async with (
        aiohttp.ClientSession(timeout=API_TIMEOUT) as http,
        http.get(f"{graph_root}/_standin/sent") as response,
    ):
        data = await response.json()
    return Counter(str(item["text"]) for item in data["items"])


async def settle_and_check(
    database_url: str,
    graph_root: str,
    bot_ids: list[str],
    openings: set[str],
    sent_wall_ms: Callable[[str], float | None],
    webhook_wall_ms: Mapping[str, float],
) -> dict[str, Any]:
    """Wait until every run finished and every bot reply settled, then check and time them.

    `openings`: every customer opened in this target's life (warm-up included): each must have
    one run per bot. `sent_wall_ms(username)`: when the measured DM of that customer was
    posted (wall clock, ms), None for a warm-up customer; `webhook_wall_ms`: when its
    Conversation Opened arrived."""
    started = time.monotonic()
    while True:
        pending, replies_open = (await asyncio.to_thread(_query, database_url, _OPEN_WORK))[0]
        if pending == 0 and replies_open == 0:
            break
        if time.monotonic() - started > SETTLE_TIMEOUT_S:
            raise BenchError(
                f"{pending} bot runs still pending and {replies_open} bot replies unsent "
                f"{SETTLE_TIMEOUT_S:g} s after the last webhook"
            )
        await asyncio.sleep(POLL_S)
    settle_s = time.monotonic() - started
    runs = await asyncio.to_thread(_query, database_url, _RUNS)
    replies = await asyncio.to_thread(_query, database_url, _REPLIES)
    tags = await asyncio.to_thread(_query, database_url, _TAGS)
    assigned = await asyncio.to_thread(_query, database_url, _ASSIGNED)
    received = await _sent_texts(graph_root)

    per_opening = Counter((str(u), str(b)) for u, b, *_ in runs)
    statuses: Counter[str] = Counter()
    by_bot: dict[str, Counter[str]] = {b: Counter() for b in bot_ids}
    run_ms: list[int] = []
    for username, bot_id, status, finished_ms, _detail in runs:
        statuses[str(status)] += 1
        by_bot.setdefault(str(bot_id), Counter())[str(status)] += 1
        sent = sent_wall_ms(str(username))
        if sent is not None and finished_ms is not None:
            run_ms.append(int((finished_ms - sent) * 1e6))
    expected_pairs = {(u, b) for u in openings for b in bot_ids}
    problems: list[str] = []
    missing = expected_pairs - set(per_opening)
    doubled_runs = {k: v for k, v in per_opening.items() if v > 1}
    extra = set(per_opening) - expected_pairs
    if missing:
        problems.append(f"{len(missing)} (opening, bot) pairs without a run, e.g. {min(missing)}")
    if doubled_runs:
        problems.append(f"{len(doubled_runs)} (opening, bot) pairs ran more than once")
    if extra:
        problems.append(f"{len(extra)} runs for no opening of this run, e.g. {min(extra)}")

    reply_ms: list[int] = []
    webhook_first = reply_first = 0
    reply_statuses: Counter[str] = Counter()
    replies_per_customer: Counter[str] = Counter()
    for username, status, sent_at_ms, _text in replies:
        reply_statuses[str(status)] += 1
        replies_per_customer[str(username)] += 1
        sent = sent_wall_ms(str(username))
        if sent is None or sent_at_ms is None:
            continue
        reply_ms.append(int((sent_at_ms - sent) * 1e6))
        hook = webhook_wall_ms.get(str(username))
        if hook is not None:
            # ms resolution on both sides: a tie counts for the webhook.
            if hook <= sent_at_ms:
                webhook_first += 1
            else:
                reply_first += 1
    # The stand-in keeps every reply of the sink's life: only this target's customers count.
    ours = {f"Hi {customer_name(i)}!" for u in openings if (i := customer_index(u)) is not None}
    received = Counter({t: c for t, c in received.items() if t in ours})
    doubled_texts = {t: c for t, c in received.items() if c > 1}
    if doubled_texts:
        problems.append(f"{len(doubled_texts)} reply texts reached the Graph API twice or more")
    if any(c > 1 for c in replies_per_customer.values()):
        problems.append("a customer got more than one bot reply")
    tag_count = Counter(str(tag) for _u, tag in tags)
    return {
        "bots": len(bot_ids),
        "openings": len(openings),
        "runs": len(runs),
        "runs_expected": len(expected_pairs),
        "run_statuses": dict(statuses),
        "run_statuses_by_bot": [dict(by_bot[b]) for b in bot_ids],
        "settle_after_last_webhook_s": round(settle_s, 2),
        "run_done_after_dm_ms": summary_ms(run_ms),
        "reply_sent_after_dm_ms": summary_ms(reply_ms),
        "replies": dict(reply_statuses),
        "replies_received_by_graph": sum(received.values()),
        "replies_doubled": len(doubled_texts),
        "webhook_before_reply": webhook_first,
        "reply_before_webhook": reply_first,
        "tags": dict(tag_count),
        "assigned_per_agent": sorted(int(n) for _a, n in assigned),
        "problems": problems,
    }
