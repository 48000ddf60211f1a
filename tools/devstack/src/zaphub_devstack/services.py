"""Which ZapHub services the stack runs, how many of each, and under which instance names."""

import sys
from pathlib import Path

from zaphub_devstack.settings import StackSettings


def console_script(name: str) -> str:
    """A console script of this venv: they sit beside its python."""
    return str(Path(sys.executable).parent / name)


def is_api(name: str) -> bool:
    """API instances are `api`, `api-2`, ...: each serves HTTP on a port of its own."""
    return name == "api" or name.startswith("api-")


def stack_services(settings: StackSettings) -> dict[str, list[str]]:
    """Instance name (also its `ZAPHUB_INSTANCE_ID`) to argv: `api`, `api-2`, then `dispatcher-1`, ..."""
    if settings.stack_services is not None:
        return dict(settings.stack_services)
    services = {
        "api" if number == 1 else f"api-{number}": [console_script("zaphub-api")]
        for number in range(1, settings.api_replicas + 1)
    }
    for service, count in (
        ("dispatcher", settings.dispatchers),
        ("ratelimiter", settings.ratelimiters),
        ("session-host", settings.session_hosts),
    ):
        for number in range(1, count + 1):
            services[f"{service}-{number}"] = [console_script(f"zaphub-{service}")]
    return services
