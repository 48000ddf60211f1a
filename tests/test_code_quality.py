"""The codebase stays lint-clean, formatted and type-checked, as CI checks it."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_lint_and_format_are_clean() -> None:
    """ruff finds nothing to report and nothing to reformat."""
    lint = run("ruff", "check", ".", "dev")
    assert lint.returncode == 0, lint.stdout[-4000:]
    fmt = run("ruff", "format", "--check", ".", "dev")
    assert fmt.returncode == 0, fmt.stdout[-4000:]


@pytest.mark.timeout(600)
def test_mypy_strict_is_clean() -> None:
    """mypy (strict) finds no type errors in any package."""
    sources = [
        str(p.relative_to(ROOT))
        for pattern in ("libs/*/src", "tools/*/src", "services/*/src")
        for p in ROOT.glob(pattern)
    ]
    result = run("mypy", *sources)
    assert result.returncode == 0, result.stdout[-4000:]
