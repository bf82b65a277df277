"""Results as Markdown: one row per measurement, then convohook ÷ limit and the history ratio."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Result = dict[str, Any]


def _load(r: Result) -> str:
    if r["mode"] == "closed":
        return f"closed, {r['concurrency']} in flight"
    offered = f" ({r['offered_rate']:g} sent)" if r.get("offered_rate") else ""
    return f"open, {r['rate']:g}/s{offered}"


def _ms(summary: Result | None) -> str:
    if not summary or not summary.get("count"):
        return "-"
    return f"{summary['p50']:.1f} / {summary['p99']:.1f} / {summary['p99.9']:.1f}"


def _system(r: Result) -> str:
    if r["target"] == "relay":
        return "relay (limit)"
    split = ", split" if r.get("topology") == "split" else ""
    split += f", {r['serves']} serves" if r.get("serves", 1) > 1 else ""
    bots = f", {r['bots_enabled']} bots" if r.get("bots_enabled") else ""
    return f"convohook{split}, {r['database']}, history {r['history']:,}{bots}"


def table(results: Sequence[Result]) -> str:
    lines = [
        "| system | batch | load | DMs | events/s | DM→webhook p50 / p99 / p99.9 (ms) "
        "| inbound p50 / p99 / p99.9 (ms) | CPU ms/event | peak RSS (MB) | missing |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {_system(r)} | {r['batch']} | {_load(r)} | {r['customers']:,} "
            f"| {r['events_per_s']:,.0f} | {_ms(r['e2e_ms'])} | {_ms(r['inbound_ms'])} "
            f"| {r['cpu_ms_per_event'] if r['cpu_ms_per_event'] is not None else '-'} "
            f"| {r['peak_rss_mb']} | {r['missing']} |"
        )
    return "\n".join(lines)


def _key(r: Result) -> tuple[Any, ...]:
    return (r["batch"], r["mode"], r["rate"], r["concurrency"], r["customers"])


def ratios(results: Sequence[Result]) -> list[str]:
    """convohook events/s ÷ relay events/s for every load both were measured under."""
    relay = {_key(r): r for r in results if r["target"] == "relay"}
    lines = []
    for r in results:
        limit = relay.get(_key(r))
        if r["target"] != "convohook" or limit is None or not limit["events_per_s"]:
            continue
        ratio = r["events_per_s"] / limit["events_per_s"]
        lines.append(
            f"{_system(r)} / limit at batch {r['batch']}, {_load(r)}: **{ratio:.2f}** "
            f"({r['events_per_s']:,.0f} / {limit['events_per_s']:,.0f} events/s)"
        )
    return lines


def history_ratios(results: Sequence[Result]) -> list[str]:
    """events/s with each larger history ÷ events/s with the smallest, same load and database."""
    ours = [r for r in results if r["target"] == "convohook"]
    lines = []
    for r in ours:
        base = min(
            (
                o
                for o in ours
                if _key(o) == _key(r)
                and o["database"] == r["database"]
                and o.get("bots_enabled") == r.get("bots_enabled")
            ),
            key=lambda o: o["history"],
        )
        if base is r or not base["events_per_s"]:
            continue
        lines.append(
            f"history {r['history']:,} vs {base['history']:,} ({r['database']}, batch "
            f"{r['batch']}, {_load(r)}): **{r['events_per_s'] / base['events_per_s']:.0%}** "
            f"({r['events_per_s']:,.0f} vs {base['events_per_s']:,.0f} events/s)"
        )
    return lines


def problems(results: Sequence[Result]) -> list[str]:
    """Anything that makes a row doubtful: refused DMs, missing or wrong deliveries, a late
    generator."""
    lines = []
    for r in results:
        where = f"{_system(r)}, batch {r['batch']}, {_load(r)}"
        checks = r["checks"]
        if r["inbound_errors"]:
            lines.append(f"{where}: inbound {r['inbound_statuses']}: {r['inbound_errors'][0]}")
        if r["missing"]:
            lines.append(f"{where}: {r['missing']} of {r['accepted']} deliveries never arrived")
        for field in ("duplicates", "repeated_customers", "bad_bodies", "bad_signatures"):
            if checks.get(field):
                lines.append(f"{where}: {checks[field]} {field.replace('_', ' ')}")
        for text in checks.get("problems", [])[:2]:
            lines.append(f"{where}: {text}")
        offered = r.get("offered_rate")
        if r["rate"] and offered and offered < 0.98 * r["rate"]:
            lines.append(
                f"{where}: the generator offered only {offered:g} of {r['rate']:g} DMs/s: the "
                "harness is short of CPU"
            )
        late = r.get("lateness_ms")
        if late and late.get("p99") is not None and late["p99"] > 10:
            lines.append(
                f"{where}: sends started late (p99 {late['p99']} ms, max {late['max']} ms "
                "behind schedule); latencies count from the actual send"
            )
    return lines


def render(results: Sequence[Result]) -> str:
    parts = [table(results)]
    for title, lines in (
        ("Ratios", ratios(results)),
        ("History", history_ratios(results)),
        ("Problems", problems(results)),
    ):
        if lines:
            parts.append(f"{title}:\n" + "\n".join(f"- {line}" for line in lines))
    return "\n\n".join(parts)
