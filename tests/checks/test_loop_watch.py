"""The checks' watch on the event loop (`sandbox.checks.common.watch_loop`): a blocking call on the loop's thread
counts; the whole process being stopped by a busy machine does not."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

from sandbox.checks.common import BLOCKED, watch_loop


async def test_a_blocking_call_on_the_loop_counts():
    async with watch_loop() as watch:
        await asyncio.sleep(0.05)
        time.sleep(0.4)  # the mistake the checks look for
        await asyncio.sleep(0.05)
    assert watch.max_gap >= 0.39 > BLOCKED


async def test_a_process_stopped_by_the_machine_is_not_the_codes_fault():
    async with watch_loop() as watch:
        await asyncio.sleep(0.05)
        waker = subprocess.Popen(["sh", "-c", f"sleep 0.4; kill -CONT {os.getpid()}"])
        os.kill(os.getpid(), signal.SIGSTOP)  # as if the operating system ran something else for 0.4 s
        waker.wait(5)
        await asyncio.sleep(0.05)
    assert watch.max_gap < BLOCKED, watch


async def test_a_free_loop_shows_no_stall():
    async with watch_loop() as watch:
        await asyncio.sleep(0.3)
    assert watch.max_gap < BLOCKED


def test_only_a_stall_the_control_thread_shared_nearly_all_along_is_left_out():
    from sandbox.checks.common import LoopWatch

    hiccup = LoopWatch(0.01, gaps=[(10.0, 10.4)], starved=[(10.1, 10.13)])  # a busy moment inside a real block
    stopped = LoopWatch(0.01, gaps=[(10.0, 10.4)], starved=[(10.0, 10.39)])  # the whole process stopped
    assert abs(hiccup.max_gap - 0.4) < 1e-9 and stopped.max_gap == 0.0
