"""What the bench makes of its measurements: the ratios to the baselines of the same run, the goals,
the table and `bench/results/latest.json`.

Throughput is reported as a ratio to a baseline measured in the same run on the same machine, since
absolute rates do not transfer between machines (raw JetStream measured 20,500 msgs/s on one 2-core
machine and 5,500-6,800 on another, for the same commit).
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "latest.json"
PREVIOUS_NAME = "previous.json"

# (op, target). Throughput goals are ratios; latency, memory and failover goals stay absolute.
GOALS: dict[str, tuple[str, float]] = {
    "api_accept_ratio_to_http_baseline": (">=", 0.25),
    "e2e_ratio_to_baseline": (">=", 0.10),
    "ratelimit_ratio_to_nats_rr": (">=", 0.5),
    "inbound_ratio_to_baseline": (">=", 0.10),
    "inbound_lost": ("<=", 0),
    "fairness_p99_ratio": ("<=", 2.0),
    "cluster_e2e_ratio_to_single": (">=", 0.5),
    "api_accept_p99_ms": ("<=", 20),
    "e2e_latency_p50_ms": ("<=", 10),
    "e2e_latency_p99_ms": ("<=", 50),
    "sim_rss_per_session_mb": ("<=", 1),
    "neonize_rss_per_client_mb": ("<=", 5),
    "ratelimit_overshoot": ("<=", 0),
    "failover_s_p99": ("<=", 10),
}

# ratio key: (numerator, denominator), both measured in the same run.
RATIOS: dict[str, tuple[str, str]] = {
    "api_accept_ratio_to_http_baseline": ("api_accept_rps", "http_baseline_rps"),
    "e2e_ratio_to_baseline": ("e2e_msgs_per_s", "jetstream_baseline_msgs_per_s"),
    "cpu_ms_per_msg_ratio_to_baseline": ("cpu_ms_per_msg", "jetstream_baseline_cpu_ms_per_msg"),
    "ratelimit_ratio_to_nats_rr": ("ratelimit_decisions_per_s", "nats_rr_baseline_per_s"),
    # What bounds the one above: the bus's share (a round trip with an append, over a bare one) and the
    # ratelimiter's own (its decisions over round trips with an append).
    "ratelimit_io_ratio_to_nats_rr": ("ratelimit_io_baseline_per_s", "nats_rr_baseline_per_s"),
    "ratelimit_ratio_to_io_baseline": ("ratelimit_decisions_per_s", "ratelimit_io_baseline_per_s"),
    "inbound_ratio_to_baseline": ("inbound_msgs_per_s", "inbound_jetstream_baseline_msgs_per_s"),
    "fairness_p99_ratio": ("fairness_flooded_p99_ms", "fairness_alone_p99_ms"),
    "fairness_burst_p99_ratio": ("fairness_burst_p99_ms", "fairness_alone_p99_ms"),
    "cluster_e2e_ratio_to_single": ("cluster_e2e_msgs_per_s", "e2e_msgs_per_s"),
}


def ratios(figures: Mapping[str, float]) -> dict[str, float]:
    """Each ratio whose two measurements are in `figures` (a zero baseline gives no ratio)."""
    return {
        key: figures[top] / figures[bottom]
        for key, (top, bottom) in RATIOS.items()
        if top in figures and figures.get(bottom)
    }


def issue_keys(figures: Mapping[str, float]) -> dict[str, float]:
    """The headline names of the density and failover figures, from the largest run measured."""
    keys: dict[str, float] = {}
    runs = sorted(
        int(k.split("_")[1]) for k in figures if k.startswith("sessions_") and k.endswith("_per_session_mb")
    )
    if runs:
        keys["sim_sessions"] = runs[-1]
        keys["sim_rss_per_session_mb"] = figures[f"sessions_{runs[-1]}_rss_per_session_mb"]
    for p in ("p50", "p99"):
        if f"failover_{p}_s" in figures:
            keys[f"failover_s_{p}"] = figures[f"failover_{p}_s"]
    return keys


def met(name: str, value: float) -> bool | None:
    """Whether `value` meets the goal of `name`; None when it has none."""
    goal = GOALS.get(name)
    if goal is None:
        return None
    op, target = goal
    return value >= target if op == ">=" else value <= target


def table(figures: Mapping[str, float]) -> str:
    lines = [f"{'figure':<40}{'value':>14}   goal"]
    for name, value in figures.items():
        verdict, goal = met(name, value), GOALS.get(name)
        mark = "" if goal is None else f"{goal[0]} {goal[1]}  {'met' if verdict else 'NOT met'}"
        lines.append(f"{name:<40}{value:>14.3f}   {mark}")
    return "\n".join(lines)


def document(
    figures: Mapping[str, float],
    machine: Mapping[str, Any],
    quick: bool,
    seconds: float,
    load: Mapping[str, tuple[float, float, float]],
) -> dict[str, Any]:
    """latest.json: every figure at the top level and under `figures`, the goals met and not met, the
    machine and the load average seen (other work on the machine moves the absolute figures)."""
    rounded = {k: round(v, 3) for k, v in sorted(figures.items())}
    goals = {name: ok for name, value in rounded.items() if (ok := met(name, value)) is not None}
    return {
        "figures": rounded,
        "goals_met": sorted(n for n, ok in goals.items() if ok),
        "goals_not_met": sorted(n for n, ok in goals.items() if not ok),
        "machine": dict(machine),
        "load_average": {when: [round(x, 2) for x in avg] for when, avg in load.items()},
        "quick": quick,
        "seconds": round(seconds, 1),
    } | rounded


def write(doc: Mapping[str, Any], path: Path = RESULTS) -> None:
    """latest.json, keeping the run before it as previous.json for `python -m bench.compare`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.replace(path.with_name(PREVIOUS_NAME))
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


# The README's Benchmarks table: what each ratio compares, and its goal.
README_ROWS: list[tuple[str, str]] = [
    (
        "api_accept_ratio_to_http_baseline",
        "API accepts (`POST …/messages` → 202, sends paused) over a bare ASGI app on granian",
    ),
    (
        "e2e_ratio_to_baseline",
        "accept → `message.sent`, sustained at 64 connections, over raw JetStream publish+consume",
    ),
    (
        "cpu_ms_per_msg_ratio_to_baseline",
        "CPU per sent message (every process) over raw JetStream's CPU per message",
    ),
    (
        "ratelimit_ratio_to_nats_rr",
        "rate-limit decisions (2 replicas) over raw NATS request/reply (2 responders)",
    ),
    (
        "ratelimit_io_ratio_to_nats_rr",
        "the bound on that: request/reply with one JetStream append per request (a decision's I/O)",
    ),
    (
        "ratelimit_ratio_to_io_baseline",
        "rate-limit decisions over that request/reply with an append (the ratelimiter's own share)",
    ),
    (
        "inbound_ratio_to_baseline",
        "inbound (`simulate` → stored in PostgreSQL and POSTed to a webhook) over raw JetStream",
    ),
    (
        "fairness_p99_ratio",
        "tenant B's accept → sent p99 while tenant A floods (queue full, webhooks black-holed), over alone",
    ),
    (
        "fairness_burst_p99_ratio",
        "the same p99 in the flood's first 4 s, while A's allowed burst (600 sends) is sent, over alone",
    ),
    ("cluster_e2e_ratio_to_single", "accept → sent on a 3-node NATS cluster (R3) over the single node"),
]


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def goal_text(key: str, value: float) -> str:
    goal = GOALS.get(key)
    return "report" if goal is None else f"{goal[0]} {goal[1]} ({'met' if met(key, value) else 'not met'})"


def markdown_table(figures: Mapping[str, float]) -> str:
    """The README's table of ratios: each with the two figures it divides and its goal."""
    lines = ["| ratio | value | measured / baseline, same run | goal |", "|---|---|---|---|"]
    for key, what in README_ROWS:
        if key not in figures:
            continue
        top, bottom = RATIOS[key]
        measured = f"{_number(figures[top])} / {_number(figures[bottom])}"
        lines.append(f"| {what} | {figures[key]:.3g} | {measured} | {goal_text(key, figures[key])} |")
    for key, what in (
        ("inbound_lost", "inbound messages that never reached the receiver"),
        ("webhook_deliveries_per_s", "signed webhook POSTs a second, 4 webhooks of 2 tenants"),
    ):
        if key in figures:
            lines.append(f"| {what} | {_number(figures[key])} | | {goal_text(key, figures[key])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    # python -m bench.report: the README's table from bench/results/latest.json
    print(markdown_table(json.loads(RESULTS.read_text())["figures"]))
