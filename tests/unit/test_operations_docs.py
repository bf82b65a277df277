"""docs/operations.md, its alerting rules and its Grafana dashboard name only metrics that exist,
and document every metric convohook exports: they cannot drift apart unnoticed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from convohook.runtime.metrics import Metrics

DOCS = Path(__file__).resolve().parents[2] / "docs"
NAME = re.compile(r"\bconvohook_[a-z_]+")


def _exported() -> set[str]:
    """Every sample name convohook exports (`_total`, `_bucket`, `_count`, `_sum` included); a
    labelled metric shows only once a label is used, so each is used once here."""
    metrics = Metrics()
    metrics.backlog.labels("notifications").set(0)
    metrics.since_beat.labels("processor").set(0)
    metrics.notifications.labels("stored").inc()
    metrics.openings.labels("first_message").inc()
    metrics.attempts.labels("success", "2xx").inc()
    metrics.deliveries.labels("succeeded").inc()
    families = text_string_to_metric_families(metrics.render().decode())
    return {sample.name for family in families for sample in family.samples}


def _rules() -> list[dict[str, object]]:
    document = yaml.safe_load((DOCS / "prometheus-rules.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_alert_rules_use_only_exported_metrics() -> None:
    exported = _exported()
    for rule in _rules():
        for name in NAME.findall(str(rule["expr"])):
            assert name in exported, f"{rule['alert']}: {name} is not exported"


def test_the_rules_in_the_page_are_the_rules_in_the_file() -> None:
    page = (DOCS / "operations.md").read_text()
    [block] = re.findall(r"```yaml\n(.*?)```", page, re.S)
    assert yaml.safe_load(block) == yaml.safe_load((DOCS / "prometheus-rules.yml").read_text())


def test_the_dashboard_uses_only_exported_metrics() -> None:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exported = _exported()
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert exprs
    for expr in exprs:
        for name in NAME.findall(expr):
            assert name in exported, f"dashboard: {name} is not exported"


def test_every_metric_is_documented() -> None:
    page = (DOCS / "operations.md").read_text()
    families = {
        family.name
        for family in text_string_to_metric_families(Metrics().render().decode())
        if not family.name.endswith("_created")
    }
    for family in families:
        documented = f"`{family}_total`" in page or f"`{family}`" in page
        assert documented, f"{family} is not in docs/operations.md's table"
