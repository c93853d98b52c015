"""The embedded dev server: ready when it answers, and never outlives the process that started it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

from sdk import DevServer, WorkflowClient

_STARTER = """
import sys, time
from sdk import DevServer
server = DevServer().start()
print(server.port, server.pid, flush=True)
time.sleep(600)
"""


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


async def test_started_server_accepts_a_client_at_once() -> None:
    async with DevServer() as server:
        client = await WorkflowClient.connect(server.target)  # no retry: it must answer now
        assert client.temporal.namespace == "default"
        assert server.pid is not None
    assert not _answers(server.port)


async def test_server_stops_when_the_starting_process_is_killed() -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", _STARTER], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    try:
        assert starter.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(starter.stdout.readline), 60)
        port, watchdog = (int(part) for part in line.split())
        assert _answers(port)
    finally:
        starter.send_signal(signal.SIGKILL)  # no cleanup code of the starter runs
        starter.wait()
        if starter.stdout is not None:
            starter.stdout.close()
    deadline = time.monotonic() + 20
    while _answers(port) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not _answers(port), "the dev server outlived the process that started it"
    while time.monotonic() < deadline:
        try:
            os.kill(watchdog, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.1)
    else:
        os.killpg(watchdog, signal.SIGKILL)
        raise AssertionError("the dev server's watchdog outlived the process that started it")
