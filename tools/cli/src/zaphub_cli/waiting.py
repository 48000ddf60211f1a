"""Waiting for a resource to reach a state by polling the API, under a spinner."""

import time
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from zaphub_cli import output
from zaphub_cli.client import CliError

T = TypeVar("T")
POLL_SECONDS = 0.5

TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds to wait before giving up (exit code 1).")
]


class WaitTimeout(CliError):
    pass


def poll(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    describe: Callable[[T], str],
    timeout: float,
    what: str,
) -> T:
    """`fetch()` every half second until `done` says so; the spinner shows `describe` of the last."""
    deadline = time.monotonic() + timeout
    with output.spinner(f"Waiting for {what}...") as say:
        while True:
            last = fetch()
            if done(last):
                return last
            say(f"Waiting for {what}: {describe(last)}")
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"gave up after {timeout:g} s waiting for {what} ({describe(last)})")
            time.sleep(POLL_SECONDS)
