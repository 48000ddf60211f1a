"""The alert rules run in Prometheus' own tools and in a real Prometheus: `promtool check rules`,
`promtool test rules` with a case for every alert, and a Prometheus scraping the embedded stack that
raises the 80 % capacity alert when simulated sessions fill a small session-host."""

import asyncio
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from e2e.client import Tenant, eventually, new_tenant

from zaphub_devstack.ports import free_port
from zaphub_devstack.prometheus import EmbeddedPrometheus
from zaphub_devstack.pytest_plugin import require_program
from zaphub_devstack.services import console_script
from zaphub_devstack.testing import Stack

PROMETHEUS = Path(__file__).resolve().parents[2] / "infra" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
UNIT_TESTS = PROMETHEUS / "alerts.test.yml"
HOST_MAX = 10  # ZAPHUB_MAX_CONCURRENT_SESSIONS of the scraped host: 9 sessions are 90 %


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = require_program("promtool", "prometheus")
    return subprocess.run(
        [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60, check=False
    )


def _alert_names() -> set[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"]}


def test_promtool_accepts_the_rules() -> None:
    """`promtool check rules` loads every rule: valid PromQL, durations and templates."""
    result = _promtool("check", "rules", ALERTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_in_its_promtool_unit_test() -> None:
    """`promtool test rules` passes, and every alert has a case where it fires with its labels and
    annotations (the file also holds the cases where it must stay quiet)."""
    cases = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    checks = [check for case in cases for check in case["alert_rule_test"]]
    firing = {check["alertname"] for check in checks if check["exp_alerts"]}
    assert _alert_names() <= firing, f"alerts with no firing case: {_alert_names() - firing}"
    result = _promtool("test", "rules", UNIT_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


@dataclass
class Scraped:
    stack: Stack
    prometheus: EmbeddedPrometheus
    tenant: Tenant


def _fast_rules(path: Path) -> Path:
    """A copy of alerts.yml evaluated every second with each `for:` cut to two seconds."""
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "2s"
    path.write_text(yaml.safe_dump(rules))
    return path


@pytest.fixture(scope="module")
async def scraped(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scraped]:
    """The stack with one session-host of HOST_MAX sessions serving /metrics, scraped every second by
    a Prometheus that evaluates the fast copy of the rules."""
    binary = require_program("prometheus", "prometheus")
    work = tmp_path_factory.mktemp("prometheus")
    metrics_port = free_port()
    # `env VAR=...` gives one worker its own settings: the supervisor passes one environment to all.
    services = {
        "api": [console_script("zaphub-api")],
        "dispatcher-1": [console_script("zaphub-dispatcher")],
        "ratelimiter-1": [console_script("zaphub-ratelimiter")],
        "session-host-1": [
            "env",
            f"ZAPHUB_METRICS_PORT={metrics_port}",
            console_script("zaphub-session-host"),
        ],
    }
    env = {"ZAPHUB_MAX_CONCURRENT_SESSIONS": str(HOST_MAX), "ZAPHUB_SIM_PAIR_DELAY": "0.2"}
    async with Stack(work / "stack", env=env, services=services) as stack:
        jobs = {
            "session-host": [f"127.0.0.1:{metrics_port}"],
            "api": [stack.api_url.removeprefix("http://")],
        }
        rules = [_fast_rules(work / "alerts.yml")]
        prometheus = EmbeddedPrometheus(work / "prometheus", jobs, rules, binary=binary)
        async with prometheus, httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            yield Scraped(stack, prometheus, await new_tenant(http, stack.admin_key))


async def _states(prometheus: EmbeddedPrometheus) -> dict[str, str]:
    return {alert["labels"]["alertname"]: alert["state"] for alert in await prometheus.alerts()}


async def _connect(tenant: Tenant, names: list[str]) -> None:
    await asyncio.gather(*(tenant.connected_session(name, timeout=60) for name in names))


async def test_the_80_percent_alert_fires_when_sessions_fill_a_small_host(scraped: Scraped) -> None:
    """3 of 10 sessions raise no capacity alert; 9 of 10 fire ZaphubCapacityOver80Percent in a real
    Prometheus, and neither the 95 % nor the at-max alert."""
    prometheus, tenant = scraped.prometheus, scraped.tenant

    async def held(count: int) -> list[dict[str, Any]] | None:
        found = await prometheus.query("sum(zaphub_session_host_held_sessions)")
        return found if found and float(found[0]["value"][1]) == count else None

    await _connect(tenant, [f"a{i}" for i in range(3)])
    await eventually(lambda: held(3), 30, "Prometheus to see 3 held sessions")
    await asyncio.sleep(4)  # several evaluations past the shortened `for:`
    assert not {"ZaphubCapacityOver80Percent", "ZaphubCapacityOver95Percent"} & set(await _states(prometheus))

    await _connect(tenant, [f"b{i}" for i in range(6)])
    await eventually(lambda: held(9), 30, "Prometheus to see 9 held sessions")

    async def firing() -> dict[str, str] | None:
        states = await _states(prometheus)
        return states if states.get("ZaphubCapacityOver80Percent") == "firing" else None

    states = await eventually(firing, 30, "ZaphubCapacityOver80Percent to fire")
    assert "ZaphubCapacityOver95Percent" not in states and "ZaphubCapacityAtMax" not in states


async def test_admin_stats_describe_the_installation_and_name_the_threshold_crossed(scraped: Scraped) -> None:
    """The admin key's stats give the live hosts' capacity, every tenant's sessions and the
    installation's limits: 9 of 10 is `warning`, 10 of 10 adds `critical` and `blocked`; a tenant key
    keeps its own view (its quota, no alerts)."""
    stack, tenant = scraped.stack, scraped.tenant
    http = tenant.http
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    sessions = (await http.get("/api/v1/sessions", headers=tenant.headers)).json()
    await _connect(tenant, [f"c{i}" for i in range(9 - len(sessions))])

    async def admin_stats(active: int) -> dict[str, Any] | None:
        response = await http.get("/api/v1/sessions/stats", headers=admin)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if body["capacity"]["active"] == active else None

    stats = await eventually(lambda: admin_stats(9), 30, "9 sessions connected")
    assert stats["capacity"] == {"active": 9, "max": HOST_MAX, "available": 1, "usage_percent": 90.0}
    assert stats["alerts"] == ["warning"]
    assert stats["limits"]["hosts"] == 1 and stats["limits"]["max_sessions_per_host"] == HOST_MAX
    assert {"db_pool_max", "rate_per_minute", "rate_per_hour", "rate_per_day"} <= set(stats["limits"])

    other = await new_tenant(http, stack.admin_key, "other")
    await other.connected_session("tenth", timeout=60)
    stats = await eventually(lambda: admin_stats(10), 30, "the tenth session connected")
    assert stats["capacity"]["available"] == 0 and stats["capacity"]["usage_percent"] == 100.0
    assert stats["sessions_by_status"]["connected"] == 10  # both tenants
    assert stats["alerts"] == ["warning", "critical", "blocked"]

    mine = (await http.get("/api/v1/sessions/stats", headers=tenant.headers)).json()
    assert mine["capacity"]["active"] == 9 and mine["capacity"]["max"] == mine["limits"]["max_sessions"]
    assert mine["alerts"] == []
