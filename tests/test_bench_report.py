"""The bench's report on a small synthetic measurement: the ratios to the same run's baselines, the goals
and the keys of latest.json. Speed is never asserted here; only the arithmetic and the file."""

import json
from pathlib import Path

import pytest

from bench import compare, report
from bench.__main__ import bracket
from bench.fairness import median_and_spread, quiet_rate

MEASURED = {
    "http_baseline_rps": 8000.0,
    "api_accept_rps": 4000.0,
    "jetstream_baseline_msgs_per_s": 10000.0,
    "jetstream_baseline_cpu_ms_per_msg": 0.1,
    "e2e_msgs_per_s": 1200.0,
    "cpu_ms_per_msg": 1.3,
    "nats_rr_baseline_per_s": 20000.0,
    "ratelimit_decisions_per_s": 12000.0,
    "inbound_msgs_per_s": 500.0,
    "inbound_jetstream_baseline_msgs_per_s": 10000.0,
    "inbound_lost": 0.0,
    "webhook_deliveries_per_s": 900.0,
    "fairness_alone_p99_ms": 20.0,
    "fairness_flooded_p99_ms": 50.0,
    "cluster_e2e_msgs_per_s": 900.0,
    "sessions_1000_rss_per_session_mb": 0.01,
    "sessions_5000_rss_per_session_mb": 0.009,
    "failover_p99_s": 7.0,
}
ISSUE_KEYS = {
    "http_baseline_rps",
    "api_accept_ratio_to_http_baseline",
    "e2e_ratio_to_baseline",
    "cpu_ms_per_msg_ratio_to_baseline",
    "nats_rr_baseline_per_s",
    "ratelimit_ratio_to_nats_rr",
    "inbound_msgs_per_s",
    "inbound_ratio_to_baseline",
    "inbound_lost",
    "webhook_deliveries_per_s",
    "fairness_p99_ratio",
    "cluster_e2e_ratio_to_single",
}


def test_each_ratio_is_its_measurement_over_the_same_runs_baseline() -> None:
    """Every ratio key is computed from the two figures of the run it is given."""
    ratios = report.ratios(MEASURED)
    assert ratios == pytest.approx(
        {
            "api_accept_ratio_to_http_baseline": 0.5,
            "e2e_ratio_to_baseline": 0.12,
            "cpu_ms_per_msg_ratio_to_baseline": 13.0,
            "ratelimit_ratio_to_nats_rr": 0.6,
            "inbound_ratio_to_baseline": 0.05,
            "fairness_p99_ratio": 2.5,
            "cluster_e2e_ratio_to_single": 0.75,
        }
    )


def test_a_ratio_without_its_baseline_is_left_out() -> None:
    """A missing or zero baseline gives no ratio rather than a division error or a made-up figure."""
    figures = {"api_accept_rps": 4000.0, "e2e_msgs_per_s": 1200.0, "jetstream_baseline_msgs_per_s": 0.0}
    assert report.ratios(figures) == {}


def test_latest_json_holds_every_key_of_the_issue_and_the_goals_met(tmp_path: Path) -> None:
    """The written file has each key at the top level and under `figures`, and names the goals met."""
    figures = MEASURED | report.issue_keys(MEASURED)
    figures |= report.ratios(figures)
    load = {"start": (1.0, 1.5, 2.0), "end": (3.0, 2.0, 2.0)}
    path = tmp_path / "latest.json"
    report.write(report.document(figures, {"cores": 2}, quick=True, seconds=1.0, load=load), path)
    written = json.loads(path.read_text())
    assert written.keys() >= ISSUE_KEYS and written["figures"].keys() >= ISSUE_KEYS
    assert written["sim_rss_per_session_mb"] == 0.009 and written["failover_s_p99"] == 7.0
    assert "api_accept_ratio_to_http_baseline" in written["goals_met"]
    assert {"fairness_p99_ratio", "inbound_ratio_to_baseline"} <= set(written["goals_not_met"])
    assert written["load_average"]["end"] == [3.0, 2.0, 2.0]
    assert "goal" in report.table(figures) and "NOT met" in report.table(figures)


def test_the_readme_table_shows_each_ratio_with_its_baseline_and_goal() -> None:
    """`python -m bench.report` prints one row per ratio: the value, the two figures and the goal."""
    figures = MEASURED | report.ratios(MEASURED)
    rows = report.markdown_table(figures).splitlines()
    (accept,) = [r for r in rows if "bare ASGI app" in r]
    assert "| 0.5 |" in accept and "4000 / 8000" in accept and ">= 0.25 (met)" in accept
    (fair,) = [r for r in rows if "floods" in r]
    assert "<= 2.0 (not met)" in fair


def test_writing_a_run_keeps_the_one_before_for_comparison(tmp_path: Path) -> None:
    """latest.json moves to previous.json when a new run is written, so two runs can be compared."""
    path = tmp_path / "latest.json"
    report.write({"figures": {"e2e_ratio_to_baseline": 0.1}}, path)
    report.write({"figures": {"e2e_ratio_to_baseline": 0.2}}, path)
    assert json.loads((tmp_path / report.PREVIOUS_NAME).read_text())["figures"] == {
        "e2e_ratio_to_baseline": 0.1
    }
    assert json.loads(path.read_text())["figures"] == {"e2e_ratio_to_baseline": 0.2}


def test_two_runs_agree_when_each_ratio_is_within_its_noise() -> None:
    """The difference is taken over the two runs' mean; fairness, a ratio of p99s, has a wider band."""
    first = {"e2e_ratio_to_baseline": 0.10, "fairness_p99_ratio": 1.5, "ratelimit_ratio_to_nats_rr": 0.30}
    second = {"e2e_ratio_to_baseline": 0.11, "fairness_p99_ratio": 1.9, "ratelimit_ratio_to_nats_rr": 0.45}
    rows = {r.key: (r.difference, r.agrees) for r in compare.compare(first, second)}
    assert rows["e2e_ratio_to_baseline"] == (pytest.approx(0.0952, abs=1e-3), True)
    assert rows["fairness_p99_ratio"] == (pytest.approx(0.2353, abs=1e-3), True)
    assert rows["ratelimit_ratio_to_nats_rr"] == (pytest.approx(0.4), False)
    assert "| `ratelimit_ratio_to_nats_rr` | 0.3 | 0.45 | 40% | ±20% | 0% | no |" in compare.markdown(
        compare.compare(first, second)
    )


def test_a_run_that_measured_its_machine_move_widens_the_band_to_that_drift() -> None:
    """A baseline that moved 45 % between its two halves in one run: the ratio it divides cannot be
    expected to repeat closer, so a 40 % difference is within that run's own noise, and says so."""
    first = {"ratelimit_ratio_to_nats_rr": 0.30, "nats_rr_baseline_per_s_drift": 0.45}
    second = {"ratelimit_ratio_to_nats_rr": 0.45, "nats_rr_baseline_per_s_drift": 0.05}
    (row,) = compare.compare(first, second)
    assert row.drift == pytest.approx(0.45) and row.agrees and not row.within_fixed
    assert "| 40% | ±20% | 45% | within its drift |" in compare.markdown([row])


def test_a_bracketed_baseline_is_the_mean_of_its_two_measurements_with_their_spread() -> None:
    """A baseline taken before and after its figure: the ratio uses the mean; the drift is recorded."""
    assert bracket("http_baseline_rps", 9000.0, 11000.0) == {
        "http_baseline_rps": 10000.0,
        "http_baseline_rps_first": 9000.0,
        "http_baseline_rps_second": 11000.0,
        "http_baseline_rps_drift": 0.2,
    }


def test_the_burst_ratio_is_shown_but_not_judged() -> None:
    """One probe of a transient: its difference is printed, and it does not decide the comparison."""
    first, second = {"fairness_burst_p99_ratio": 3.0}, {"fairness_burst_p99_ratio": 10.0}
    (row,) = compare.compare(first, second)
    assert not row.judged and row.verdict == "report only"
    assert "| report only |" in compare.markdown([row])


def test_a_p99_of_probes_is_their_median_and_the_spread_of_the_middle_ones() -> None:
    """One probe hit by a stall (900 ms) moves neither the figure nor its noise."""
    median, spread = median_and_spread([40.0, 50.0, 900.0, 45.0, 55.0])
    assert median == 50.0 and spread == pytest.approx((55.0 - 45.0) / 50.0)


def test_the_quiet_tenant_sends_a_share_of_the_machine_s_rate_and_never_too_few() -> None:
    assert quiet_rate(400.0) == pytest.approx(80.0)
    assert quiet_rate(50.0) == 20.0
