"""Whether two full runs agree: each ratio of one run beside the other's, within its noise.

    python -m bench.compare [A.json B.json]     # default: bench/results/previous.json and latest.json

A ratio divides two figures measured moments apart on the same machine, each with a noise of about
±10 % between full runs on a quiet machine (docs/benchmarks.md), so two runs agree when each ratio
differs from the other run's by at most 20 % of their mean. The fairness ratios divide two p99s of a
few thousand samples each, set by a handful of the slowest sends: 30 %.

A run also measures its own noise: each baseline is taken before and after its figure, and their
spread over their mean is recorded as `<key>_drift`. When the machine moved more than the fixed band
within a run, a ratio cannot repeat closer than that, so its band widens to the largest drift either
run recorded for one of the ratio's two sides. The table shows both bands, and which one decided.

The burst ratio is shown but not judged: it is one 4-s probe of a transient (A's allowed burst being
sent), with no repeat within a run to say how far it can move. Nor are the two that split the rate-limit
ratio into the bus's share and the ratelimiter's: they say what bounds it, and have no goal.
"""

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.report import PREVIOUS_NAME, RATIOS, RESULTS

DEFAULT_NOISE = 0.20
NOISE: dict[str, float] = {"fairness_p99_ratio": 0.30, "fairness_burst_p99_ratio": 0.30}
REPORT_ONLY = frozenset(
    {"fairness_burst_p99_ratio", "ratelimit_io_ratio_to_nats_rr", "ratelimit_ratio_to_io_baseline"}
)


def noise(key: str) -> float:
    return NOISE.get(key, DEFAULT_NOISE)


def drift(key: str, *runs: Mapping[str, float]) -> float:
    """The largest in-run spread recorded for either side of the ratio `key`, in any of `runs`."""
    sides = RATIOS[key]
    return max((run.get(f"{side}_drift", 0.0) for run in runs for side in sides), default=0.0)


def difference(a: float, b: float) -> float:
    """|a - b| over their mean: symmetric, so it does not matter which run is first."""
    mean = (a + b) / 2
    return abs(a - b) / mean if mean else 0.0


@dataclass(frozen=True)
class Row:
    key: str
    first: float
    second: float
    difference: float
    fixed: float  # the stated band
    drift: float  # the largest spread the runs measured for one of its sides

    @property
    def within_fixed(self) -> bool:
        return self.difference <= self.fixed

    @property
    def agrees(self) -> bool:
        return self.difference <= max(self.fixed, self.drift)

    @property
    def judged(self) -> bool:
        return self.key not in REPORT_ONLY

    @property
    def verdict(self) -> str:
        if not self.judged:
            return "report only"
        return "yes" if self.within_fixed else ("within its drift" if self.agrees else "no")


def compare(a: Mapping[str, float], b: Mapping[str, float]) -> list[Row]:
    """A row for each ratio both runs measured."""
    return [
        Row(key, a[key], b[key], difference(a[key], b[key]), noise(key), drift(key, a, b))
        for key in RATIOS
        if key in a and key in b
    ]


def markdown(rows: list[Row]) -> str:
    lines = [
        "| ratio | run 1 | run 2 | difference | fixed band | in-run drift | agree |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r.key}` | {r.first:.3g} | {r.second:.3g} | {r.difference:.0%} | ±{r.fixed:.0%} "
            f"| {r.drift:.0%} | {r.verdict} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    paths = [Path(p) for p in argv] if argv else [RESULTS.with_name(PREVIOUS_NAME), RESULTS]
    a, b = (json.loads(p.read_text())["figures"] for p in paths)
    rows = compare(a, b)
    print(markdown(rows))
    return 0 if all(r.agrees for r in rows if r.judged) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
