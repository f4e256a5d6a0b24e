"""The timer loop behind the sweep and the portfolio run: failures don't stop it, stop() does."""

from __future__ import annotations

import asyncio

from cartera_common.periodic import Periodic


class Counting(Periodic):
    interval_s = 0.01

    def __init__(self, fail_first: int) -> None:
        super().__init__()
        self.calls = 0
        self.fail_first = fail_first

    async def tick(self) -> None:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise RuntimeError("boom")
        if self.calls == 5:
            self.stop()


async def test_a_failing_tick_is_logged_and_the_next_one_still_runs(caplog: object) -> None:
    loop = Counting(fail_first=2)
    await asyncio.wait_for(loop.run(), timeout=5)
    assert loop.calls == 5
    assert "Counting failed" in str(getattr(caplog, "text", ""))


async def test_stop_ends_the_loop_while_it_waits() -> None:
    loop = Counting(fail_first=0)
    loop.interval_s = 3600
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0.05)
    loop.stop()
    await asyncio.wait_for(task, timeout=1)
    assert loop.calls == 1
