"""Group commit: batching of concurrent calls, and errors that stay with their own call."""

import asyncio

import pytest

from zaphub_runtime.group_commit import GroupCommit


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def flush(self, batch: list[int]) -> list[int | BaseException]:
        self.batches.append(batch)
        await self.gate.wait()
        return [ValueError(f"odd {n}") if n % 2 else n * 10 for n in batch]


async def test_an_idle_call_goes_out_alone_at_once() -> None:
    """With nothing in flight a call is flushed on its own, without waiting for company."""
    recorder = Recorder()
    commits = GroupCommit(recorder.flush)
    assert await commits.submit(2) == 20
    assert recorder.batches == [[2]]


async def test_calls_arriving_during_a_flush_share_the_next_one() -> None:
    """Calls that come while a batch is being written go out together, in arrival order."""
    recorder = Recorder()
    recorder.gate.clear()
    commits = GroupCommit(recorder.flush, max_batch=3)
    first = asyncio.create_task(commits.submit(0))
    await asyncio.sleep(0.01)
    rest = [asyncio.create_task(commits.submit(n)) for n in (2, 4, 6, 8)]
    await asyncio.sleep(0.01)
    recorder.gate.set()
    assert await first == 0
    assert await asyncio.gather(*rest) == [20, 40, 60, 80]
    assert recorder.batches == [[0], [2, 4, 6], [8]]


async def test_an_error_of_one_item_reaches_only_its_caller() -> None:
    """A per-item error is raised to that caller; the others of the batch get their results."""
    recorder = Recorder()
    recorder.gate.clear()
    commits = GroupCommit(recorder.flush)
    calls = [asyncio.create_task(commits.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0.01)
    recorder.gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert results[0] == 20 and results[2] == 40
    assert isinstance(results[1], ValueError)


async def test_a_failed_flush_fails_its_batch_and_the_next_batch_still_runs() -> None:
    """When the write itself fails, every call of that batch sees the error and later calls go on."""
    failing = True

    async def flush(batch: list[int]) -> list[int | BaseException]:
        if failing:
            raise ConnectionError("database away")
        return batch

    commits: GroupCommit[int, int] = GroupCommit(flush)
    with pytest.raises(ConnectionError):
        await commits.submit(1)
    failing = False
    assert await commits.submit(5) == 5


async def test_a_caller_that_gives_up_does_not_cancel_the_batch() -> None:
    """Cancelling one waiting call leaves the batch, and the other calls in it, to complete."""
    recorder = Recorder()
    recorder.gate.clear()
    commits = GroupCommit(recorder.flush)
    quitter = asyncio.create_task(commits.submit(2))
    stayer = asyncio.create_task(commits.submit(4))
    await asyncio.sleep(0.01)
    quitter.cancel()
    recorder.gate.set()
    assert await stayer == 40
    await commits.wait_idle()
    assert recorder.batches == [[2, 4]]
