"""docker-compose.temporal.yml and the Dockerfile, checked without a Docker engine.

The compose file is validated against the Compose Specification's JSON schema, then its
pieces are checked against each other and against the worker: hosts, ports, databases,
credentials, the worker's ``DWF_*`` settings, health checks and grace periods.

``tests/data/compose-spec.json`` is the Compose Specification schema
(https://github.com/compose-spec/compose-spec, ``schema/compose-spec.json``, Apache-2.0),
copied unmodified from the ``check-jsonschema`` 0.39.0 wheel on PyPI
(``check_jsonschema/builtin_schemas/vendor/compose-spec.json``, sha256 d549057e...0e64), so
the test needs no network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from sdk import SigningKey
from sdk._trust import COMMAND_KEYS_ENV
from worker._settings import ENVIRONMENT_VARIABLES, WorkerSettings

jsonschema = pytest.importorskip("jsonschema")
yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.temporal.yml"
DOCKERFILE = REPO / "Dockerfile"
SCHEMA = REPO / "tests" / "data" / "compose-spec.json"
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"

_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}")


def interpolate(text: str, environ: dict[str, str] | None = None) -> str:
    """Compose's ``${VAR:-default}`` interpolation, with an empty environment by default."""
    environ = environ or {}

    def replace(match: re.Match[str]) -> str:
        name, op, default = match["name"], match["op"], match["default"]
        value = environ.get(name)
        if value is None or (op == ":-" and value == ""):
            if op is None:
                raise AssertionError(f"${{{name}}} has no default: the file must work without an .env")
            return default
        return value

    return _VAR.sub(replace, text.replace("$$", "\0")).replace("\0", "$")


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(interpolate(COMPOSE.read_text()))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def container_ports(service: dict[str, Any]) -> dict[int, int]:
    """host port -> container port of a service's short-syntax port mappings."""
    mapping: dict[int, int] = {}
    for entry in service.get("ports", []):
        host, _, container = str(entry).rpartition(":")
        mapping[int(host.rsplit(":", 1)[-1])] = int(container.split("/")[0])
    return mapping


def created_databases(compose: dict[str, Any], postgres: dict[str, Any]) -> tuple[set[str], dict[str, str]]:
    """The databases and roles (with passwords) the postgres service ends up with."""
    env = environment(postgres)
    databases = {env.get("POSTGRES_DB", env.get("POSTGRES_USER", "postgres"))}
    roles = {env.get("POSTGRES_USER", "postgres"): env["POSTGRES_PASSWORD"]}
    for ref in postgres.get("configs", []):
        source = ref["source"] if isinstance(ref, dict) else ref
        target = ref.get("target", "") if isinstance(ref, dict) else ""
        assert target.startswith("/docker-entrypoint-initdb.d/") and target.endswith(".sql")
        sql = compose["configs"][source]["content"]
        databases |= set(re.findall(r"CREATE DATABASE (\w+)", sql, re.IGNORECASE))
        roles |= dict(re.findall(r"CREATE ROLE (\w+) .*PASSWORD '([^']*)'", sql, re.IGNORECASE))
    return databases, roles


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def instruction(name: str) -> list[str]:
    return [rest for word, rest in dockerfile() if word == name]


def test_vendored_schema_is_the_published_file() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_compose_file_matches_the_compose_specification(raw: dict[str, Any], compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for document in (raw, compose):
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_schema_validation_catches_mistakes(compose: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    broken = json.loads(json.dumps(compose))
    broken["services"]["worker"]["depends_on"] = {"temporal": {"condition": "when_ready"}}
    broken["services"]["worker"]["healthchek"] = {}
    assert len(list(validator.iter_errors(broken))) >= 2


def test_images_and_topology(services: dict[str, Any]) -> None:
    assert set(services) == {"postgresql", "temporal", "temporal-ui", "worker", "inbox"}
    assert services["postgresql"]["image"].startswith("postgres:16")
    assert services["temporal"]["image"].startswith("temporalio/auto-setup:")
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert services["worker"]["build"] in (".", {"context": "."})
    assert services["temporal"]["depends_on"]["postgresql"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["postgresql"]["condition"] == "service_healthy"
    assert "temporal" in services["worker"]["depends_on"]
    assert "healthcheck" in services["postgresql"] and "healthcheck" in services["worker"]
    volume = services["postgresql"]["volumes"][0]
    assert volume.endswith(":/var/lib/postgresql/data")


def test_worker_environment_is_valid_worker_settings(services: dict[str, Any]) -> None:
    env = environment(services["worker"])
    unknown = {k for k in env if k.startswith("DWF_")} - ENVIRONMENT_VARIABLES - {COMMAND_KEYS_ENV}
    assert not unknown, f"the worker does not read {sorted(unknown)}"
    settings = WorkerSettings.load(environ=env)  # parses and checks every value
    for module in settings.app:
        assert importlib.util.find_spec(module) is not None, f"DWF_APP names {module}, which does not exist"


def test_temporal_address_points_at_the_temporal_service(services: dict[str, Any]) -> None:
    settings = WorkerSettings.load(environ=environment(services["worker"]))
    host, _, port = settings.temporal_address.rpartition(":")
    assert host == "temporal"
    assert int(port) == 7233 and 7233 in container_ports(services["temporal"]).values()
    assert environment(services["temporal-ui"])["TEMPORAL_ADDRESS"] == settings.temporal_address


def test_temporal_uses_the_postgres_service(compose: dict[str, Any], services: dict[str, Any]) -> None:
    temporal = environment(services["temporal"])
    postgres = environment(services["postgresql"])
    databases, roles = created_databases(compose, services["postgresql"])
    assert temporal["DB"] == "postgres12"
    assert temporal["POSTGRES_SEEDS"] == "postgresql"
    assert int(temporal["DB_PORT"]) == int(postgres.get("PGPORT", 5432))
    assert roles[temporal["POSTGRES_USER"]] == temporal["POSTGRES_PWD"]
    assert {temporal["DBNAME"], temporal["VISIBILITY_DBNAME"]} <= databases


def test_mirror_database_is_its_own_database_on_the_postgres_service(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    settings = WorkerSettings.load(environ=environment(services["worker"]))
    url = make_url(settings.database_url)
    databases, roles = created_databases(compose, services["postgresql"])
    temporal = environment(services["temporal"])
    assert url.drivername == "postgresql+asyncpg"
    assert url.host == "postgresql"
    assert url.port == int(environment(services["postgresql"]).get("PGPORT", 5432))
    assert url.database in databases
    assert url.database not in (temporal["DBNAME"], temporal["VISIBILITY_DBNAME"])
    assert url.username in roles and roles[url.username] == url.password


def test_host_ports_do_not_collide(services: dict[str, Any]) -> None:
    host_ports = [port for service in services.values() for port in container_ports(service)]
    assert len(host_ports) == len(set(host_ports)), host_ports
    assert {7233, 8080, 9464, 8000} <= set(host_ports)


def _healthcheck_port(command: str, path: str = "/healthz") -> int:
    match = re.search(rf"http://(?:127\.0\.0\.1|localhost):(\d+){re.escape(path)}", command)
    assert match, f"no {path} URL in {command!r}"
    return int(match[1])


def test_inbox_serves_the_workers_mirror_and_signs_what_the_worker_verifies(services: dict[str, Any]) -> None:
    inbox, worker = services["inbox"], services["worker"]
    assert inbox["image"] == worker["image"]  # the worker's service builds it
    assert "worker" in inbox["depends_on"]
    command = inbox["command"]
    assert command[:2] == ["dwf", "serve"]
    port = int(command[command.index("--port") + 1])
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert port in container_ports(inbox).values()
    test = inbox["healthcheck"]["test"]
    assert _healthcheck_port(" ".join(test), "/api/session/users") == port
    env, worker_env = environment(inbox), environment(worker)
    shared = ("DWF_TEMPORAL_ADDRESS", "DWF_TEMPORAL_NAMESPACE", "DWF_TASK_QUEUE", "DWF_DATABASE_URL")
    shared += ("DWF_APP",)
    assert {k: env[k] for k in shared} == {k: worker_env[k] for k in shared}
    key = SigningKey.parse(env["DWF_SIGNING_KEY"])
    assert key.public_key in worker_env[COMMAND_KEYS_ENV].split(",")
    assert len(env["DWF_INBOX_JWT_SECRET"]) >= 32 and len(env["DWF_INBOX_SESSION_SECRET"]) >= 32


def test_worker_ports_match_its_http_port(services: dict[str, Any]) -> None:
    worker = services["worker"]
    settings = WorkerSettings.load(environ=environment(worker))
    assert settings.http_port in container_ports(worker).values()
    test = worker["healthcheck"]["test"]
    assert _healthcheck_port(" ".join(test) if isinstance(test, list) else test) == settings.http_port


def test_worker_gets_longer_to_stop_than_its_shutdown_grace(services: dict[str, Any]) -> None:
    worker = services["worker"]
    settings = WorkerSettings.load(environ=environment(worker))
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", worker["stop_grace_period"])
    assert match and match[0]
    grace_period = int(match[1] or 0) * 60 + int(match[2] or 0)
    assert grace_period > settings.shutdown_grace


def test_dockerfile_runs_the_worker_as_a_non_root_user(services: dict[str, Any]) -> None:
    assert instruction("FROM") == ["python:3.11-slim"]
    assert any("pip install ." in run for run in instruction("RUN"))
    users = instruction("USER")
    assert users and users[-1] not in ("root", "0")
    assert json.loads(instruction("CMD")[-1]) == ["python", "-m", "worker"]
    assert instruction("STOPSIGNAL") in ([], ["SIGTERM"])


def test_dockerfile_healthcheck_and_port_match_the_http_port(services: dict[str, Any]) -> None:
    env = dict(pair.split("=", 1) for line in instruction("ENV") for pair in shlex.split(line) if "=" in pair)
    port = int(env["DWF_HTTP_PORT"])
    assert instruction("EXPOSE") == [str(port)]
    (healthcheck,) = instruction("HEALTHCHECK")
    assert _healthcheck_port(healthcheck) == port
    compose_port = WorkerSettings.load(environ=environment(services["worker"])).http_port
    assert compose_port == port
    assert set(env) - {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR",
                       "PIP_DISABLE_PIP_VERSION_CHECK"} <= ENVIRONMENT_VARIABLES  # fmt: skip


def test_dockerignore_keeps_the_build_context_small() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert {".git", ".venv", "tests"} <= set(ignored)
    for needed in ("pyproject.toml", "README.md", "sdk", "worker", "activities", "examples"):
        assert needed not in ignored and (REPO / needed).exists()
        assert any(needed in line for line in instruction("COPY"))


def test_interpolation_helper() -> None:
    assert interpolate("a ${X:-1} ${Y-2} $$Z", {"X": ""}) == "a 1 2 $Z"
    assert interpolate("${X:-1}", {"X": "9"}) == "9"
    with pytest.raises(AssertionError):
        interpolate("${NO_DEFAULT}")
