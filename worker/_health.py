"""The worker's small HTTP server: ``/healthz``, ``/readyz`` and ``/metrics``.

Plain ``asyncio.start_server``, one request per connection, GET and HEAD only: enough for
probes and a Prometheus scrape, with no web framework to install. It runs on the worker's
event loop on purpose: the readiness checks are coroutines of that loop (the Temporal client,
the async database engine), and ``/healthz`` proves the loop itself still runs.
``prometheus_client``'s own server answers from a thread (so a blocked loop would still look
alive, and each check would have to cross threads); aiohttp or an ASGI server would add several
packages for three fixed routes. The page itself comes from ``prometheus_client`` (see
``_metrics``).

- ``/healthz`` (liveness) answers 200 whenever the event loop runs the handler at all: a
  blocked loop or a dead process fails the probe by not answering.
- ``/readyz`` (readiness) runs every readiness check at once, each with a deadline, and
  answers 200 if all pass, else 503; the JSON body says which check failed and why.
- ``/metrics`` answers the Prometheus text exposition format.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus

from ._metrics import CONTENT_TYPE

__all__ = ["HealthServer", "ReadinessCheck"]

logger = logging.getLogger("dwf.worker")

ReadinessCheck = Callable[[], Awaitable[str | None]]
"""A readiness check: returns None when ready, else why not (one short line)."""

_MAX_REQUEST = 16 * 1024


class HealthServer:
    """Serves the probes and the metrics page on ``host:port``.

    Args:
        host: Address to bind.
        port: Port to bind (0: any free port, see :attr:`port` after :meth:`start`).
        checks: Readiness checks by name.
        metrics: Renders the ``/metrics`` page.
        check_timeout: Seconds a readiness check may take before it counts as failed.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        checks: Mapping[str, ReadinessCheck],
        metrics: Callable[[], Awaitable[str]],
        check_timeout: float = 3.0,
    ) -> None:
        self.host = host
        self.port = port
        self.checks = dict(checks)
        self.metrics = metrics
        self.check_timeout = check_timeout
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind and serve in the background."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        logger.info("health and metrics on http://%s:%d (/healthz /readyz /metrics)", self.host, self.port)

    async def close(self) -> None:
        """Stop accepting connections and wait for the server to close."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    async def readiness(self) -> tuple[bool, dict[str, str]]:
        """Run every check concurrently; (all passed, {name: "ok" or the reason})."""

        async def run(check: ReadinessCheck) -> str | None:
            try:
                return await asyncio.wait_for(check(), self.check_timeout)
            except TimeoutError:
                return f"no answer within {self.check_timeout:g}s"
            except Exception as exc:
                return f"{type(exc).__name__}: {exc}".splitlines()[0]

        names = list(self.checks)
        results = await asyncio.gather(*(run(self.checks[name]) for name in names))
        report = {name: result or "ok" for name, result in zip(names, results, strict=True)}
        return all(result is None for result in results), report

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path = await self._read_request(reader)
            status, content_type, body = await self._respond(method, path)
            header = (
                f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                f"Content-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Cache-Control: no-store\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(header.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            logger.exception("health server: request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
        """(method, path) of the request; ("", "") when it is malformed or too large."""
        try:
            raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
        except asyncio.LimitOverrunError:
            return "", ""
        parts = raw.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(raw) > _MAX_REQUEST or len(parts) != 3:
            return "", ""
        return parts[0], parts[1].split("?", 1)[0]

    async def _respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        if not method:
            return _json(400, {"error": "malformed request"})
        if path not in ("/healthz", "/readyz", "/metrics"):
            return _json(404, {"error": f"no such endpoint {path}; try /healthz, /readyz or /metrics"})
        if method not in ("GET", "HEAD"):
            return _json(405, {"error": "use GET"})
        if path == "/healthz":
            return _json(200, {"status": "alive"})
        if path == "/readyz":
            ready, report = await self.readiness()
            return _json(
                200 if ready else 503, {"status": "ready" if ready else "not ready", "checks": report}
            )
        page = await self.metrics()
        return 200, CONTENT_TYPE, page.encode("utf-8")


def _json(status: int, body: object) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(body, sort_keys=True).encode("utf-8") + b"\n"
