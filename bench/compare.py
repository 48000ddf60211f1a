"""Whether two full runs agree: each ratio of one run beside the other's, within its stated noise.

    python -m bench.compare [A.json B.json]     # default: bench/results/previous.json and latest.json

A ratio divides two figures measured moments apart on the same machine, each with a noise of about
±10 % between full runs on a quiet machine (docs/benchmarks.md), so two runs agree when each ratio
differs from the other run's by at most 20 % of their mean. The fairness ratio divides two p99s of a
few thousand samples each, set by a handful of the slowest sends: 30 %.
"""

import json
import sys
from collections.abc import Mapping
from pathlib import Path

from bench.report import PREVIOUS_NAME, RATIOS, RESULTS

DEFAULT_NOISE = 0.20
NOISE: dict[str, float] = {"fairness_p99_ratio": 0.30}


def noise(key: str) -> float:
    return NOISE.get(key, DEFAULT_NOISE)


def difference(a: float, b: float) -> float:
    """|a - b| over their mean: symmetric, so it does not matter which run is first."""
    mean = (a + b) / 2
    return abs(a - b) / mean if mean else 0.0


def compare(a: Mapping[str, float], b: Mapping[str, float]) -> list[tuple[str, float, float, float, bool]]:
    """(ratio, run A, run B, difference, agrees) for each ratio both runs measured."""
    rows = []
    for key in RATIOS:
        if key in a and key in b:
            d = difference(a[key], b[key])
            rows.append((key, a[key], b[key], d, d <= noise(key)))
    return rows


def markdown(rows: list[tuple[str, float, float, float, bool]]) -> str:
    lines = ["| ratio | run 1 | run 2 | difference | noise | agree |", "|---|---|---|---|---|---|"]
    for key, x, y, d, ok in rows:
        lines.append(
            f"| `{key}` | {x:.3g} | {y:.3g} | {d:.0%} | ±{noise(key):.0%} | {'yes' if ok else 'no'} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    paths = [Path(p) for p in argv] if argv else [RESULTS.with_name(PREVIOUS_NAME), RESULTS]
    a, b = (json.loads(p.read_text())["figures"] for p in paths)
    rows = compare(a, b)
    print(markdown(rows))
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
