"""The worker's settings (flags over environment over defaults), and the process's pure
helpers: the ``/metrics`` page, log records, and the health server's HTTP answers."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from worker import settings_from
from worker.__main__ import main as worker_main
from worker._health import HealthServer
from worker._logging import LogContextFilter, configure_logging, json_formatter, text_formatter
from worker._metrics import render_metrics
from worker._process import notifiers_from
from worker._settings import (
    ENVIRONMENT_VARIABLES,
    OPTIONS,
    ConfigurationError,
    WorkerSettings,
    add_worker_arguments,
)

APP = {"DWF_APP": "examples.expense_approval"}


def parse(*argv: str) -> argparse.Namespace:
    return add_worker_arguments(argparse.ArgumentParser()).parse_args(argv)


def test_defaults() -> None:
    settings = WorkerSettings.load(environ=APP)
    assert settings == WorkerSettings(app=("examples.expense_approval",))
    assert settings.temporal_address == "localhost:7233"
    assert settings.temporal_namespace == "default"
    assert settings.task_queue == "durable-workflows"
    assert settings.database_url == "sqlite+aiosqlite:///dwf.db"
    assert settings.http_port == 9464
    assert settings.shutdown_grace == 30.0
    assert settings.max_concurrent_activities is None
    assert not settings.use_tls


def test_every_variable_is_read(tmp_path: Path) -> None:
    for name in ("cert.pem", "key.pem", "ca.pem"):
        (tmp_path / name).write_text("PEM")
    env = {
        "DWF_TEMPORAL_ADDRESS": "ns.acct.tmprl.cloud:7233",
        "DWF_TEMPORAL_NAMESPACE": "ns.acct",
        "DWF_TASK_QUEUE": "expenses",
        "DWF_DATABASE_URL": "postgresql+asyncpg://dwf:secret@db:5432/dwf",
        "DWF_APP": " examples.expense_approval , other.app ",
        "DWF_SANDBOX_PASSTHROUGH": "other.models, examples.expense_approval",
        "DWF_MAX_CONCURRENT_ACTIVITIES": "50",
        "DWF_MAX_CONCURRENT_WORKFLOW_TASKS": "20",
        "DWF_TEMPORAL_TLS": "yes",
        "DWF_TEMPORAL_TLS_CERT": str(tmp_path / "cert.pem"),
        "DWF_TEMPORAL_TLS_KEY": str(tmp_path / "key.pem"),
        "DWF_TEMPORAL_TLS_CA": str(tmp_path / "ca.pem"),
        "DWF_TEMPORAL_API_KEY": "k3y",
        "DWF_HTTP_HOST": "127.0.0.1",
        "DWF_HTTP_PORT": "0",
        "DWF_SHUTDOWN_GRACE": "2.5",
        "DWF_LOG_LEVEL": "debug",
        "DWF_LOG_FORMAT": "JSON",
        "DWF_OTEL_TRACING": "false",
        "DWF_NOTIFY_LOG": "on",
        "DWF_NOTIFY_WEBHOOK_URL": "https://hooks.example.com/dwf",
        "DWF_NOTIFY_WEBHOOK_SECRET": "hm4c",
        "DWF_NOTIFY_SMTP_HOST": "smtp.example.com",
        "DWF_NOTIFY_SMTP_PORT": "587",
        "DWF_NOTIFY_EMAIL_FROM": "dwf@example.com",
        "DWF_NOTIFY_EMAIL_TO": "desk@example.com, ops@example.com",
    }
    assert set(env) == ENVIRONMENT_VARIABLES
    settings = WorkerSettings.load(environ=env)
    assert settings.temporal_address == "ns.acct.tmprl.cloud:7233"
    assert settings.temporal_namespace == "ns.acct"
    assert settings.task_queue == "expenses"
    assert settings.app == ("examples.expense_approval", "other.app")
    assert settings.sandbox_passthrough == ("other.models", "examples.expense_approval")
    assert (settings.max_concurrent_activities, settings.max_concurrent_workflow_tasks) == (50, 20)
    assert settings.temporal_tls and settings.use_tls
    assert settings.temporal_tls_cert == tmp_path / "cert.pem"
    assert settings.temporal_tls_ca == tmp_path / "ca.pem"
    assert settings.temporal_api_key == "k3y"
    assert (settings.http_host, settings.http_port, settings.shutdown_grace) == ("127.0.0.1", 0, 2.5)
    assert (settings.log_level, settings.log_format, settings.otel_tracing) == ("DEBUG", "json", False)
    described = json.dumps(settings.describe())
    assert "k3y" not in described and ":secret@" not in described and "k3y" not in repr(settings)
    assert "hm4c" not in described and "hm4c" not in repr(settings)
    assert settings.notify_email_to == ("desk@example.com", "ops@example.com")
    notifiers = notifiers_from(settings.check())
    assert [type(n).__name__ for n in notifiers] == ["LogNotifier", "WebhookNotifier", "EmailNotifier"]
    assert notifiers[2].port == 587  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DWF_NOTIFY_WEBHOOK_URL": "https://h.example.com"}, "DWF_NOTIFY_WEBHOOK_SECRET is not"),
        ({"DWF_NOTIFY_WEBHOOK_SECRET": "s"}, "DWF_NOTIFY_WEBHOOK_URL is not"),
        ({"DWF_NOTIFY_WEBHOOK_URL": "ftp://h", "DWF_NOTIFY_WEBHOOK_SECRET": "s"}, "http:// or https://"),
        ({"DWF_NOTIFY_SMTP_HOST": "smtp"}, "needs DWF_NOTIFY_EMAIL_FROM and DWF_NOTIFY_EMAIL_TO"),
        ({"DWF_NOTIFY_EMAIL_TO": "nobody"}, "not an e-mail address"),
    ],
)
def test_notifier_settings_come_in_consistent_sets(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        WorkerSettings.load(environ={"DWF_APP": "examples.expense_approval", **env}).check()


def test_flags_win_over_the_environment() -> None:
    env = {**APP, "DWF_TASK_QUEUE": "from-env", "DWF_HTTP_PORT": "1234", "DWF_TEMPORAL_TLS": "false"}
    args = parse("--task-queue", "from-flag", "--http-port", "0", "--tls", "--app", "a.b")
    settings = WorkerSettings.load(args, env)
    assert (settings.task_queue, settings.http_port, settings.temporal_tls) == ("from-flag", 0, True)
    assert settings.app == ("a.b",)
    # A flag not given leaves the variable in charge.
    assert WorkerSettings.load(parse(), env).task_queue == "from-env"
    assert WorkerSettings.load(parse("--tls", "false"), APP).temporal_tls is False


def test_every_setting_has_a_flag_and_a_variable() -> None:
    flags = [o.flag for o in OPTIONS]
    assert len(set(flags)) == len(flags) == len(ENVIRONMENT_VARIABLES)
    assert all(o.env.startswith("DWF_") and o.flag.startswith("--") for o in OPTIONS)
    help_text = add_worker_arguments(argparse.ArgumentParser()).format_help()
    assert all(o.flag in help_text and o.env in help_text for o in OPTIONS)


def test_dot_env_file_is_read_below_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("DWF_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DWF_APP=examples.expense_approval\nDWF_TASK_QUEUE=from-dotenv\nOTHER=x\n")
    assert (settings_from({}).app, settings_from({}).task_queue) == (
        ("examples.expense_approval",),
        "from-dotenv",
    )
    monkeypatch.setenv("DWF_TASK_QUEUE", "from-env")
    assert settings_from({}).task_queue == "from-env"
    assert settings_from({"task_queue": "from-flag"}).task_queue == "from-flag"
    # An explicit environment replaces both the process's and the file's.
    with pytest.raises(ConfigurationError, match="DWF_APP is not set"):
        settings_from({}, environ={})


def test_settings_from_takes_typed_values_and_names_the_flag() -> None:
    settings = settings_from(
        {"app": ("a.b",), "http_port": 0, "temporal_tls": True, "log_level": None}, environ={}
    )
    assert (settings.app, settings.http_port, settings.temporal_tls, settings.log_level) == (
        ("a.b",),
        0,
        True,
        "INFO",
    )
    with pytest.raises(
        ConfigurationError, match=r"^--http-port: expected a port number 0-65535 .*got '70000'$"
    ):
        settings_from({"app": "a.b", "http_port": 70000}, environ={})
    # A value given under another flag (a global --address) is named by that flag.
    with pytest.raises(ConfigurationError, match=r"^--address: expected host:port"):
        settings_from(
            {"temporal_address": "nowhere"}, environ={}, check=False, flags={"temporal_address": "--address"}
        )
    # Without the checks (a command that only connects needs no application).
    assert settings_from({}, environ={}, check=False).app == ()


def test_options_come_from_the_model() -> None:
    assert [o.field for o in OPTIONS] == list(WorkerSettings.model_fields)
    for option in OPTIONS:
        info = WorkerSettings.model_fields[option.field]
        assert option.help == info.description and option.help
        assert option.default == info.default
    assert {o.field for o in OPTIONS if o.boolean} == {"temporal_tls", "otel_tracing", "notify_log"}
    assert [o.field for o in OPTIONS if o.secret] == ["temporal_api_key", "notify_webhook_secret"]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DWF_MAX_CONCURRENT_ACTIVITIES", "abc", "expected a positive integer, got 'abc'"),
        ("DWF_MAX_CONCURRENT_ACTIVITIES", "0", "positive integer"),
        ("DWF_MAX_CONCURRENT_WORKFLOW_TASKS", "-3", "positive integer"),
        ("DWF_MAX_CONCURRENT_WORKFLOW_TASKS", "1", "at least 2"),
        ("DWF_HTTP_PORT", "70000", "port number"),
        ("DWF_HTTP_PORT", "http", "port number"),
        ("DWF_SHUTDOWN_GRACE", "soon", "seconds"),
        ("DWF_SHUTDOWN_GRACE", "-1", "seconds"),
        ("DWF_SHUTDOWN_GRACE", "nan", "seconds"),
        ("DWF_TEMPORAL_TLS", "maybe", "true or false"),
        ("DWF_TEMPORAL_ADDRESS", "localhost", "host:port"),
        ("DWF_TEMPORAL_ADDRESS", "localhost:port", "host:port"),
        ("DWF_DATABASE_URL", "not a url", "not a database URL"),
        ("DWF_DATABASE_URL", "postgresql://u@h/db", "postgresql+asyncpg"),
        ("DWF_DATABASE_URL", "sqlite:///dwf.db", "sqlite+aiosqlite"),
        ("DWF_DATABASE_URL", "mysql+aiomysql://h/db", "unsupported database"),
        ("DWF_APP", "examples/expense_approval.py", "not a module path"),
        ("DWF_APP", ",", "at least one module"),
        ("DWF_SANDBOX_PASSTHROUGH", "my-models", "not a module path"),
        ("DWF_LOG_LEVEL", "loud", "DEBUG"),
        ("DWF_LOG_FORMAT", "xml", "json or text"),
        ("DWF_TEMPORAL_TLS_CA", "/no/such/ca.pem", "no such file"),
    ],
)
def test_bad_values_name_their_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        WorkerSettings.load(environ={**APP, variable: value})
    message = str(info.value)
    assert message.startswith(f"{variable}: ") and expected in message
    assert "\n" not in message


def test_bad_flag_values_name_their_flag() -> None:
    with pytest.raises(ConfigurationError, match=r"^--max-concurrent-activities: expected a positive"):
        WorkerSettings.load(parse("--max-concurrent-activities", "many"), APP)


def test_missing_app_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match=r"DWF_APP is not set.*examples\.expense_approval"):
        WorkerSettings.load(environ={})


def test_tls_settings_must_agree(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("PEM")
    with pytest.raises(ConfigurationError, match="DWF_TEMPORAL_TLS_CERT is set but DWF_TEMPORAL_TLS_KEY"):
        WorkerSettings.load(environ={**APP, "DWF_TEMPORAL_TLS_CERT": str(cert)})
    with pytest.raises(ConfigurationError, match="DWF_TEMPORAL_TLS is false but DWF_TEMPORAL_API_KEY"):
        WorkerSettings.load(environ={**APP, "DWF_TEMPORAL_TLS": "0", "DWF_TEMPORAL_API_KEY": "k"})
    assert WorkerSettings.load(environ={**APP, "DWF_TEMPORAL_API_KEY": "k"}).use_tls
    assert WorkerSettings.load(environ={**APP, "DWF_TEMPORAL_TLS_CA": str(cert)}).use_tls


def test_otel_tracing_needs_opentelemetry() -> None:
    try:
        import opentelemetry  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigurationError, match="temporalio\\[opentelemetry\\]"):
            WorkerSettings.load(environ={**APP, "DWF_OTEL_TRACING": "true"})
    else:
        assert WorkerSettings.load(environ={**APP, "DWF_OTEL_TRACING": "true"}).otel_tracing


# -- /metrics ----------------------------------------------------------------------------------


def samples(page: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page: (name, sorted labels) -> value (parses it all)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


def types(page: str) -> dict[str, str]:
    """``# TYPE`` of each family on the page, by the name the page gives it."""
    return dict(line.split()[2:4] for line in page.splitlines() if line.startswith("# TYPE "))  # type: ignore[misc]


def mirror_page(snapshot: dict[str, float]) -> str:
    return render_metrics(worker_up=True, info={}, mirror_snapshot=snapshot)


def test_mirror_snapshot_becomes_prometheus_families() -> None:
    page = mirror_page(
        {
            "rows_written_total": 12,
            "write_failures_total": 1,
            "batches_total": 4,
            "lag_seconds_p50": 0.25,
            "lag_seconds_p95": 1.5,
            "lag_seconds_count": 8,
            "lag_seconds_sum": 3.0,
        }
    )
    values, kinds = samples(page), types(page)
    assert (
        kinds["dwf_mirror_rows_written_total"] == "counter"
        and values[("dwf_mirror_rows_written_total", ())] == 12
    )
    assert kinds["dwf_mirror_write_failures_total"] == "counter"
    assert values[("dwf_mirror_write_failures_total", ())] == 1
    assert kinds["dwf_mirror_batches_total"] == "counter" and values[("dwf_mirror_batches_total", ())] == 4
    assert kinds["dwf_mirror_lag_seconds"] == "summary"
    assert values[("dwf_mirror_lag_seconds", (("quantile", "0.5"),))] == 0.25
    assert values[("dwf_mirror_lag_seconds", (("quantile", "0.95"),))] == 1.5
    assert (
        values[("dwf_mirror_lag_seconds_count", ())] == 8 and values[("dwf_mirror_lag_seconds_sum", ())] == 3
    )
    # The short names of the same counters render the same way.
    short = samples(mirror_page({"rows_written": 3, "failures": 0}))
    assert (
        short[("dwf_mirror_rows_written_total", ())] == 3
        and short[("dwf_mirror_write_failures_total", ())] == 0
    )


def test_every_key_of_the_mirror_snapshot_is_exported() -> None:
    page = mirror_page(
        {"rows_written_total": 1, "queue_depth": 5, "retries_total": 2, "lag_seconds_max": 0.5}
    )
    values, kinds = samples(page), types(page)
    assert (kinds["dwf_mirror_queue_depth"], values[("dwf_mirror_queue_depth", ())]) == ("gauge", 5)
    assert (kinds["dwf_mirror_retries_total"], values[("dwf_mirror_retries_total", ())]) == ("counter", 2)
    assert "# HELP dwf_mirror_lag_seconds_max Largest recent lag, in seconds." in page
    # The writer's own snapshot, whatever keys it has today: one sample for each key.
    from sdk.mirror import MirrorMetrics

    snapshot = {key: float(i + 1) for i, key in enumerate(MirrorMetrics().snapshot())}
    exported = {
        key: value
        for key, value in samples(mirror_page(snapshot)).items()
        if key[0].startswith("dwf_mirror_") and key[0] != "dwf_mirror_enabled"
    }
    assert len(exported) == len(snapshot) and sorted(exported.values()) == sorted(snapshot.values())


def test_metrics_page_has_the_worker_families_and_relays_the_sdk_page() -> None:
    sdk_page = '# TYPE temporal_request counter\ntemporal_request{operation="X"} 3'
    page = render_metrics(
        worker_up=True, info={"task_queue": 'q"1'}, mirror_snapshot={"rows_written": 2}, sdk_metrics=sdk_page
    )
    values = samples(page)
    assert values[("dwf_worker_up", ())] == 1
    assert values[("dwf_worker_info", (("task_queue", 'q"1'),))] == 1
    assert 'dwf_worker_info{task_queue="q\\"1"} 1.0\n' in page
    assert values[("dwf_mirror_enabled", ())] == 1 and values[("dwf_temporal_sdk_metrics_up", ())] == 1
    assert page.endswith('temporal_request{operation="X"} 3\n')
    down = render_metrics(worker_up=False, info={})
    down_values = samples(down)
    assert down_values[("dwf_worker_up", ())] == 0 and down_values[("dwf_mirror_enabled", ())] == 0
    assert "dwf_mirror_rows" not in down
    for line in page.splitlines():  # every sample line is `name{labels} value`
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


# -- logs -----------------------------------------------------------------------------------


def _record(**extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord(
        {"name": "dwf.test", "levelname": "INFO", "msg": "hello %s", "args": ("x",)}
    )
    record.__dict__.update(extra)
    LogContextFilter().filter(record)
    return record


def test_log_records_carry_workflow_and_step() -> None:
    activity = {
        "activity_id": "3",
        "activity_type": "pay_expense",
        "attempt": 2,
        "namespace": "default",
        "task_queue": "q",
        "workflow_id": "wf-1",
        "workflow_run_id": "run-1",
        "workflow_type": "expense_approval@1.0.0",
    }
    entry = json.loads(json_formatter().format(_record(temporal_activity=activity, order=7)))
    assert entry["message"] == "hello x" and entry["level"] == "INFO" and entry["logger"] == "dwf.test"
    assert (entry["workflow_id"], entry["run_id"], entry["step"], entry["attempt"]) == (
        "wf-1",
        "run-1",
        "pay_expense",
        2,
    )
    assert entry["order"] == 7 and "temporal_activity" not in entry
    workflow = {
        "workflow_id": "wf-2",
        "run_id": "run-2",
        "workflow_type": "t",
        "attempt": 1,
        "task_queue": "q",
    }
    line = text_formatter().format(_record(temporal_workflow=workflow))
    assert "dwf.test: hello x [workflow_id=wf-2 run_id=run-2 workflow_type=t attempt=1 task_queue=q]" in line
    plain = json.loads(json_formatter().format(_record()))
    assert "workflow_id" not in plain


def test_configure_logging_writes_one_json_object_per_line() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("INFO", "json", stream=stream)
        logging.getLogger("dwf.test").info("one")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("dwf.test").exception("two")
        logging.getLogger("dwf.test").debug("hidden")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["message"] for e in entries] == ["one", "two"]
    assert "ValueError: boom" in entries[1]["exc"]


# -- the health server -------------------------------------------------------------------------


async def _request(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


async def test_health_server_answers_probes_and_metrics() -> None:
    state = {"temporal": "unreachable: connection refused"}

    async def temporal() -> str | None:
        return state.get("temporal")

    async def slow() -> str | None:
        await asyncio.sleep(10)
        return None

    async def metrics() -> str:
        return "dwf_worker_up 1\n"

    server = HealthServer("127.0.0.1", 0, checks={"temporal": temporal}, metrics=metrics, check_timeout=0.2)
    await server.start()
    try:
        status, _, body = await _request(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (status, json.loads(body)) == (200, {"status": "alive"})
        status, _, body = await _request(server.port, b"GET /readyz HTTP/1.1\r\n\r\n")
        assert status == 503
        assert json.loads(body) == {"status": "not ready", "checks": {"temporal": state["temporal"]}}
        state.clear()
        status, _, body = await _request(server.port, b"GET /readyz?verbose=1 HTTP/1.1\r\n\r\n")
        assert (status, json.loads(body)["checks"]) == (200, {"temporal": "ok"})
        server.checks["slow"] = slow
        status, _, body = await _request(server.port, b"GET /readyz HTTP/1.1\r\n\r\n")
        assert status == 503 and json.loads(body)["checks"]["slow"] == "no answer within 0.2s"
        status, headers, body = await _request(server.port, b"GET /metrics HTTP/1.1\r\n\r\n")
        assert (status, body) == (200, b"dwf_worker_up 1\n")
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
        status, headers, body = await _request(server.port, b"HEAD /metrics HTTP/1.1\r\n\r\n")
        assert status == 200 and body == b"" and headers["Content-Length"] == "16"
        assert (await _request(server.port, b"POST /healthz HTTP/1.1\r\n\r\n"))[0] == 405
        assert (await _request(server.port, b"GET /admin HTTP/1.1\r\n\r\n"))[0] == 404
        assert (await _request(server.port, b"nonsense\r\n\r\n"))[0] == 400
    finally:
        await server.close()


def test_operations_guide_documents_every_setting() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    for option in OPTIONS:
        assert f"| `{option.env}` | `{option.flag}` |" in guide, option.env


def test_the_documented_configuration_error_is_the_one_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n.startswith("DWF_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DWF_APP", "examples.expense_approval")
    monkeypatch.setenv("DWF_MAX_CONCURRENT_ACTIVITIES", "abc")
    assert worker_main([]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        "python -m worker: error: DWF_MAX_CONCURRENT_ACTIVITIES: expected a positive integer, got 'abc'"
    )
    guide = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    assert f"`{line}`" in guide
