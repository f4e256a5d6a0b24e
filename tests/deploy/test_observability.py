"""The Grafana dashboard charts the metrics the services really expose, and Prometheus scrapes every service."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from typing import Any

import yaml
from prometheus_client import REGISTRY

from tests.deploy.manifests import DEPLOY, compose, compose_env
from tests.deploy.settings_env import SERVICE_NAMES

OBSERVABILITY = DEPLOY / "observability"
DASHBOARD = OBSERVABILITY / "grafana" / "dashboards" / "cartera.json"
# Series Prometheus makes itself rather than scraping them.
PROMETHEUS_OWN = {"up"}
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "rate", "irate", "increase",
    "histogram_quantile", "topk", "bottomk", "abs", "clamp_min", "on", "ignoring", "group_left",
}  # fmt: skip


def exposed_metric_names() -> set[str]:
    """Every series name the services' /metrics can show: the registry after importing each service."""
    for service in SERVICE_NAMES:
        importlib.import_module(f"{service}.main")
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    names = set()
    for family in REGISTRY.collect():
        names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def panel_expressions(panels: list[dict[str, Any]]) -> Iterator[str]:
    for panel in panels:
        yield from (t["expr"] for t in panel.get("targets", []))
        yield from panel_expressions(panel.get("panels", []))


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', "", expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    return {w for w in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr) if w not in PROMQL_WORDS}


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def test_the_dashboard_charts_only_metrics_that_exist() -> None:
    exposed = exposed_metric_names() | PROMETHEUS_OWN
    used = set().union(*(metric_names(e) for e in panel_expressions(dashboard()["panels"])))
    assert used, "no metric found in the dashboard"
    assert not used - exposed, f"the dashboard queries metrics no service exposes: {sorted(used - exposed)}"


def test_every_cartera_metric_has_a_panel() -> None:
    used = set().union(*(metric_names(e) for e in panel_expressions(dashboard()["panels"])))
    families = {f.name: f.type for f in REGISTRY.collect() if f.name.startswith("cartera_")}
    exposed_once = set()
    for name, kind in families.items():
        series = {f"{name}_total", f"{name}_bucket"} if kind in ("counter", "histogram") else {name}
        if not series & used:
            exposed_once.add(name)
    assert not exposed_once, f"metrics without a panel: {sorted(exposed_once)}"


def test_panels_use_the_provisioned_datasource_and_have_unique_ids() -> None:
    with (OBSERVABILITY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").open() as f:
        uid = yaml.safe_load(f)["datasources"][0]["uid"]
    ids = []
    for panel in dashboard()["panels"]:
        ids.append(panel["id"])
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == uid, panel["title"]
    assert len(ids) == len(set(ids))


def test_prometheus_scrapes_every_service_on_its_port() -> None:
    with (OBSERVABILITY / "prometheus.yml").open() as f:
        config = yaml.safe_load(f)
    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert set(jobs) == set(SERVICE_NAMES)
    for service in SERVICE_NAMES:
        assert jobs[service] == [f"{service}:{compose_env(service)[f'{service.upper()}_PORT']}"]


def test_grafana_loads_the_dashboard_from_where_compose_mounts_it() -> None:
    with (OBSERVABILITY / "grafana" / "provisioning" / "dashboards" / "cartera.yaml").open() as f:
        path = yaml.safe_load(f)["providers"][0]["options"]["path"]
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in compose()["services"]["grafana"]["volumes"]}
    assert mounts[path] == "./observability/grafana/dashboards"
