"""`serve` turns a background task's death into exit code 70, for the supervisor to restart it."""

import asyncio
import os
import sys
import textwrap

from zaphub_runtime.service import EXIT_TASK_DIED

TINY_SERVICE = textwrap.dedent(
    """
    import asyncio

    from zaphub_runtime.lifecycle import Lifecycle
    from zaphub_runtime.service import serve
    from zaphub_runtime.settings import CommonSettings


    async def consume() -> None:
        await asyncio.sleep(0.1)
        raise RuntimeError("a consumer loop bug")


    async def run(settings: CommonSettings, stop: asyncio.Event) -> None:
        async with Lifecycle("tiny", stop) as life:
            life.spawn(consume(), "consumer")
            await life.stop.wait()


    serve("tiny", CommonSettings(), run)
    """
)


async def test_a_service_whose_background_task_dies_exits_with_70() -> None:
    """The watched task raises; the service stops by itself and the process exits with EX_SOFTWARE."""
    env = os.environ | {"ZAPHUB_LOG_FORMAT": "text", "OTEL_TRACES_EXPORTER": "none"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", TINY_SERVICE, env=env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == EXIT_TASK_DIED == 70, stderr.decode()
    assert b"background task consumer ended" in stderr
