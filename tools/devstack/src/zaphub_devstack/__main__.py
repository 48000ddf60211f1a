"""`zaphub-stack` / `python -m zaphub_devstack`: run the whole ZapHub stack on this machine."""

import asyncio

from zaphub_devstack.settings import StackSettings
from zaphub_devstack.supervisor import run_stack


def main() -> int:
    return asyncio.run(run_stack(StackSettings()))


if __name__ == "__main__":
    raise SystemExit(main())
