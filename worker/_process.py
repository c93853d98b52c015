"""The long-lived worker process: start up, run, and shut down cleanly.

:func:`run_worker` imports the application's modules, opens the SQL mirror, connects to
Temporal (retrying with backoff while either is unreachable), runs the worker built by
:func:`worker.create_worker`, and serves health and metrics. SIGTERM or SIGINT stops polling
and gives in-flight activities ``shutdown_grace`` seconds to finish (temporalio's graceful
shutdown), then closes the mirror. Once the server is up, Temporal's worker retries its polls
by itself while the server is away; the process stays up and catches up when it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, GetSystemInfoRequest
from temporalio.client import TLSConfig
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from activities import EmailNotifier, LogNotifier, Notifier, WebhookNotifier
from sdk import DefinitionError, WorkflowClient, WorkflowDefinition, registry
from sdk.mirror import MirrorWriter

from ._build import create_worker
from ._failing import FailingWorkflowTasks
from ._health import HealthServer
from ._metrics import create_runtime, render_metrics, scrape_sdk_metrics
from ._settings import ConfigurationError, WorkerSettings

__all__ = ["WorkerProcess", "import_app", "run_worker"]

logger = logging.getLogger("dwf.worker")

T = TypeVar("T")

_TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    OperationalError,
    InterfaceError,
)
_TRANSIENT_TEMPORAL_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, OSError, TimeoutError, RPCError)


# ---------------------------------------------------------------------------------------------
# Start-up pieces


def import_app(modules: Sequence[str]) -> list[WorkflowDefinition[..., Any]]:
    """Import the application's modules and return every registered workflow definition.

    The current directory is importable, as for ``python -m``.

    Raises:
        ConfigurationError: A module cannot be imported, defines a workflow badly, or no
            workflow is registered at all.
    """
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigurationError(f"DWF_APP: cannot import {name!r}: {exc}") from exc
        except DefinitionError as exc:
            raise ConfigurationError(f"DWF_APP: {name!r} defines a workflow badly: {exc}") from exc
    definitions = list(registry.workflows.values())
    if not definitions:
        raise ConfigurationError(f"DWF_APP: no @workflow is defined in {', '.join(modules)}")
    return definitions


def _one_line(exc: BaseException) -> str:
    text_ = " ".join(str(exc).split()) or type(exc).__name__
    return text_ if len(text_) <= 300 else text_[:297] + "..."


async def _retry(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    transient: tuple[type[BaseException], ...],
    stop: asyncio.Event,
    *,
    initial: float = 0.5,
    maximum: float = 30.0,
) -> T | None:
    """Run ``attempt`` until it succeeds, sleeping with exponential backoff after a transient error.

    Each failure is logged on one line. Returns None when ``stop`` is set first.
    """
    delay, number = initial, 0
    while not stop.is_set():
        number += 1
        try:
            return await attempt()
        except transient as exc:
            logger.warning(
                "%s failed (attempt %d): %s; retrying in %.1fs", what, number, _one_line(exc), delay
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, maximum)
    return None


def _tls(settings: WorkerSettings) -> bool | TLSConfig:
    if settings.temporal_tls_cert is None and settings.temporal_tls_ca is None:
        return settings.use_tls
    return TLSConfig(
        server_root_ca_cert=settings.temporal_tls_ca.read_bytes() if settings.temporal_tls_ca else None,
        client_cert=settings.temporal_tls_cert.read_bytes() if settings.temporal_tls_cert else None,
        client_private_key=settings.temporal_tls_key.read_bytes() if settings.temporal_tls_key else None,
    )


def _client_interceptors(settings: WorkerSettings) -> list[Any]:
    if not settings.otel_tracing:
        return []
    # Imported only when asked for: OpenTelemetry is an optional dependency.
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


# ---------------------------------------------------------------------------------------------
# The process


class WorkerProcess:
    """One run of the worker process; :func:`run_worker` is the usual entry point.

    Args:
        settings: The worker's settings.
        stop: Set it to stop the worker (SIGTERM and SIGINT set it too).
        exit_delay: Seconds to sleep after the Temporal worker shut down: it keeps the
            interpreter from crashing at exit (docs/temporal-facts.md, "Exit after a worker").
    """

    def __init__(
        self, settings: WorkerSettings, *, stop: asyncio.Event | None = None, exit_delay: float = 1.0
    ):
        self.settings = settings
        self.stop = stop or asyncio.Event()
        self.exit_delay = exit_delay
        self.client: WorkflowClient | None = None
        self.worker: Worker | None = None
        self.mirror: MirrorWriter | None = None
        self.health: HealthServer | None = None
        self._runtime: Runtime | None = None
        self._sdk_metrics_url: str | None = None
        self._engine: AsyncEngine | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._signals: list[int] = []
        self.failing_tasks = FailingWorkflowTasks()

    # -- signals

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            logger.warning(
                "%s again: shutdown already in progress (grace %gs)", name, self.settings.shutdown_grace
            )
            return
        logger.info("%s received: stopping", name)
        self.stop.set()

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(signum, self._on_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                continue
            self._signals.append(signum)

    def _remove_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in self._signals:
            loop.remove_signal_handler(signum)
        self._signals.clear()

    # -- readiness and metrics

    @property
    def worker_running(self) -> bool:
        return self._run_task is not None and not self._run_task.done() and not self._stopping

    async def _check_temporal(self) -> str | None:
        if self.client is None:
            return f"not connected to {self.settings.temporal_address} yet"
        try:
            await self.client.temporal.workflow_service.get_system_info(
                GetSystemInfoRequest(), timeout=timedelta(seconds=2)
            )
        except RPCError as exc:
            return f"{self.settings.temporal_address} unreachable: {_one_line(exc)}"
        return None

    async def _check_worker(self) -> str | None:
        if self._stopping:
            return "shutting down"
        return None if self.worker_running else "not polling yet"

    async def _check_database(self) -> str | None:
        if self.mirror is None:
            return "mirror not open yet"
        if not self.mirror.available:
            return f"mirror database unavailable ({self.mirror.metrics.backlog} writes queued)"
        if self._engine is None:
            self._engine = create_async_engine(self.settings.database_url, poolclass=NullPool)
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return f"{self.settings.database_url_redacted} unreachable: {_one_line(exc)}"
        return None

    async def _render_metrics(self) -> str:
        sdk_page = await scrape_sdk_metrics(self._sdk_metrics_url) if self._sdk_metrics_url else None
        snapshot = None
        if self.mirror is not None:
            try:
                snapshot = dict(self.mirror.metrics.snapshot())
            except Exception as exc:
                logger.warning("cannot read the mirror's metrics: %s", _one_line(exc))
        if self.client is not None:
            try:
                await self.failing_tasks.refresh(self.client.temporal)
            except Exception as exc:  # Temporal away: the list stays as it is
                logger.debug("cannot refresh the failing workflow tasks: %s", _one_line(exc))
        info = {
            "task_queue": self.settings.task_queue,
            "namespace": self.settings.temporal_namespace,
            "temporal_address": self.settings.temporal_address,
        }
        return render_metrics(
            worker_up=self.worker_running,
            info=info,
            mirror_snapshot=snapshot,
            sdk_metrics=sdk_page,
            failing=self.failing_tasks.tasks,
        )

    # -- start-up

    async def _open_mirror(self, definitions: list[WorkflowDefinition[..., Any]]) -> MirrorWriter | None:
        writer = MirrorWriter.from_url(self.settings.database_url)

        async def prepare() -> MirrorWriter:
            await writer.upgrade_schema()
            await writer.register_definitions(definitions)
            return writer

        what = f"opening the mirror database {self.settings.database_url_redacted}"
        try:
            ready = await _retry(what, prepare, _TRANSIENT_DB_ERRORS, self.stop)
        except BaseException:
            await writer.close()
            raise
        if ready is None:
            await writer.close()
            return None
        logger.info("mirror ready: %s", self.settings.database_url_redacted)
        return writer

    async def _connect(self) -> WorkflowClient | None:
        settings = self.settings

        async def connect() -> WorkflowClient:
            options: dict[str, Any] = {
                # WorkflowClient.connect passes a TLSConfig through as is (its ``tls`` is truthy).
                "tls": _tls(settings),
                "runtime": self._runtime,
                "interceptors": _client_interceptors(settings),
            }
            return await asyncio.wait_for(
                WorkflowClient.connect(
                    settings.temporal_address,
                    namespace=settings.temporal_namespace,
                    task_queue=settings.task_queue,
                    api_key=settings.temporal_api_key,
                    **options,
                ),
                30.0,
            )

        what = f"connecting to Temporal at {settings.temporal_address}"
        client = await _retry(what, connect, _TRANSIENT_TEMPORAL_ERRORS, self.stop)
        if client is None:
            return None
        try:
            await client.temporal.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=settings.temporal_namespace), timeout=timedelta(seconds=10)
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise ConfigurationError(
                    f"DWF_TEMPORAL_NAMESPACE: namespace {settings.temporal_namespace!r} does not exist "
                    f"on {settings.temporal_address}"
                ) from None
            # Permission to describe namespaces is not needed to run a worker: carry on.
            logger.debug("describe_namespace: %s", _one_line(exc))
        logger.info(
            "connected to Temporal at %s, namespace %s",
            settings.temporal_address,
            settings.temporal_namespace,
        )
        return client

    # -- run

    async def run(self) -> None:
        """Run until stopped (returns) or until the Temporal worker fails (raises).

        Raises:
            ConfigurationError: The application or the namespace is wrong.
        """
        settings = self.settings
        self._install_signal_handlers()
        started = time.monotonic()
        try:
            definitions = import_app(settings.app)
            names = ", ".join(sorted(d.workflow_type for d in definitions))
            logger.info("starting worker: %s", json.dumps(settings.describe()))
            logger.info("workflows: %s", names)
            self._runtime, self._sdk_metrics_url = create_runtime(prometheus=settings.http_port != 0)
            if settings.http_port != 0:
                checks = {
                    "temporal": self._check_temporal,
                    "worker": self._check_worker,
                    "database": self._check_database,
                }
                self.health = HealthServer(
                    settings.http_host, settings.http_port, checks=checks, metrics=self._render_metrics
                )
                await self.health.start()
            self.mirror = await self._open_mirror(definitions)
            if self.stop.is_set():
                return
            self.client = await self._connect()
            if self.client is None:
                return
            self.worker = create_worker(
                self.client,
                task_queue=settings.task_queue,
                workflows=definitions,
                mirror=self.mirror,
                max_concurrent_activities=settings.max_concurrent_activities,
                max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
                graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace),
                notifiers=notifiers_from(settings),
                failing_tasks=self.failing_tasks,
                sandbox_passthrough=settings.sandbox_passthrough,
            )
            await self._run_until_stopped(self.worker)
        finally:
            await self._close(used_temporal=self._runtime is not None)
            logger.info("worker stopped after %.1fs", time.monotonic() - started)

    async def _run_until_stopped(self, worker: Worker) -> None:
        self._run_task = asyncio.create_task(worker.run(), name="temporal-worker")
        stop_task = asyncio.create_task(self.stop.wait(), name="stop-signal")
        logger.info("polling task queue %r", self.settings.task_queue)
        try:
            await asyncio.wait({self._run_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_task.cancel()
        if not self._run_task.done():
            self._stopping = True
            logger.info(
                "stopping: no new tasks; in-flight activities get up to %gs to finish",
                self.settings.shutdown_grace,
            )
            await worker.shutdown()
        # Re-raises if the worker failed on its own.
        await self._run_task

    async def _close(self, *, used_temporal: bool) -> None:
        self._stopping = True
        if self.mirror is not None:
            try:
                await self.mirror.close()
            except Exception as exc:
                logger.warning("closing the mirror failed: %s", _one_line(exc))
        if self._engine is not None:
            await self._engine.dispose()
        if self.health is not None:
            await self.health.close()
        self._remove_signal_handlers()
        if used_temporal and self.exit_delay > 0:
            # A process that ran a Worker can crash at interpreter exit unless the core's
            # threads get a moment after shutdown (docs/temporal-facts.md, "Exit after a worker").
            await asyncio.sleep(self.exit_delay)


async def run_worker(settings: WorkerSettings, *, stop: asyncio.Event | None = None) -> None:
    """Run the worker described by ``settings`` until SIGTERM/SIGINT (or ``stop`` is set).

    Returns after a clean shutdown: polling stopped, in-flight activities finished (or
    cancelled after ``settings.shutdown_grace``), the mirror closed.

    Raises:
        ConfigurationError: The application modules or the namespace are wrong.
        Exception: The Temporal worker failed.
    """
    await WorkerProcess(settings, stop=stop).run()


def notifiers_from(settings: WorkerSettings) -> list[Notifier]:
    """The built-in notifiers the ``DWF_NOTIFY_*`` settings ask for (each for every step)."""
    found: list[Notifier] = []
    if settings.notify_log:
        found.append(LogNotifier())
    if settings.notify_webhook_url is not None and settings.notify_webhook_secret is not None:
        found.append(WebhookNotifier(settings.notify_webhook_url, settings.notify_webhook_secret))
    if settings.notify_smtp_host is not None and settings.notify_email_from:
        found.append(
            EmailNotifier(
                settings.notify_smtp_host,
                port=settings.notify_smtp_port,
                sender=settings.notify_email_from,
                to=list(settings.notify_email_to),
            )
        )
    return found
