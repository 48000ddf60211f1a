"""The README tells the truth: two quickstart commands, CI runs the second, every setting documented."""

import re
from pathlib import Path

from pydantic_settings import BaseSettings

from zaphub_api.settings import ApiSettings
from zaphub_dispatcher.settings import DispatcherSettings
from zaphub_ratelimiter.settings import RatelimiterSettings
from zaphub_session_host.settings import HostSettings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def first_code_block(section: str) -> list[str]:
    body = README.split(f"## {section}\n", 1)[1]
    block = re.search(r"```\w*\n(.*?)```", body, re.S)
    assert block, f"no code block under ## {section}"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_quickstart_has_exactly_two_commands_and_ci_runs_the_second() -> None:
    """The quickstart is one command for the stack and one for the tests; .ci/run runs the latter."""
    commands = first_code_block("Quickstart")
    assert len(commands) == 2, commands
    assert "up" in commands[0]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci


def test_every_setting_is_in_the_configuration_table() -> None:
    """Each ZAPHUB_* setting of every service appears in the README."""
    classes: list[type[BaseSettings]] = [ApiSettings, DispatcherSettings, RatelimiterSettings, HostSettings]
    missing = sorted(
        {f"ZAPHUB_{name.upper()}" for cls in classes for name in cls.model_fields}
        - set(re.findall(r"`(ZAPHUB_[A-Z0-9_]+)`", README))
    )
    assert not missing, f"settings missing from README.md: {missing}"


def test_benchmarks_section_holds_the_one_command() -> None:
    """`## Benchmarks` starts with the command that reproduces the figures."""
    assert first_code_block("Benchmarks") == ["./dev bench"]
