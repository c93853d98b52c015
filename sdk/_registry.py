"""The process-wide registry of steps and workflow definitions.

Decorators register what they build here, so the worker and the client find definitions by
name and version. Inside the workflow sandbox the user's module is imported again; those
re-imports must not register anything (they build throw-away copies for one workflow run).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from temporalio import workflow as _wf

from ._errors import DefinitionError, WorkflowNotFoundError

if TYPE_CHECKING:
    from ._definition import HumanStep, MachineStep, WorkflowDefinition

__all__ = ["Registry", "parse_version", "registry"]

_VERSION_RE = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+][0-9A-Za-z.-]+)?$")


def version_key(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
    """Semantic-version order: a pre-release sorts before its release (2.0.0-rc.1 < 2.0.0)."""
    major, minor, patch = parse_version(version)
    pre = version.split("+", 1)[0].partition("-")[2]
    if not pre:
        return (major, minor, patch, 1, ())
    parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return (major, minor, patch, 0, parts)


def parse_version(version: str) -> tuple[int, int, int]:
    """Parse ``MAJOR[.MINOR[.PATCH]][-pre|+build]`` into a sortable tuple.

    Raises:
        DefinitionError: The string is not such a version.
    """
    match = _VERSION_RE.match(version) if isinstance(version, str) else None
    if match is None:
        raise DefinitionError(
            f"bad version string {version!r}: use a semantic version such as '1.0.0' "
            "(MAJOR.MINOR.PATCH, optional -prerelease)"
        )
    return (int(match[1]), int(match[2] or 0), int(match[3] or 0))


def _origin(obj: object) -> str:
    fn = getattr(obj, "fn", None)
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"


def _same_origin(a: object, b: object) -> bool:
    """True when both objects come from the same source (a module imported twice)."""
    return _origin(a) == _origin(b)


class Registry:
    """Steps by name, workflow definitions by (name, version)."""

    def __init__(self) -> None:
        self.steps: dict[str, MachineStep[..., Any] | HumanStep[..., Any]] = {}
        self.workflows: dict[tuple[str, str], WorkflowDefinition[..., Any]] = {}

    def add_step(self, step: MachineStep[..., Any] | HumanStep[..., Any]) -> None:
        """Register a step; a second, different step under the same name is an error."""
        if _wf.unsafe.in_sandbox():
            return
        existing = self.steps.get(step.name)
        if existing is not None and not _same_origin(existing, step):
            raise DefinitionError(
                f"duplicate step name {step.name!r}: already used by {_origin(existing)}; "
                "give one of them another name with name=..."
            )
        self.steps[step.name] = step

    def add_workflow(self, definition: WorkflowDefinition[..., Any]) -> None:
        """Register a workflow version; a different function under the same key is an error."""
        if _wf.unsafe.in_sandbox():
            return
        key = (definition.name, definition.version)
        existing = self.workflows.get(key)
        if existing is not None and not _same_origin(existing, definition):
            raise DefinitionError(
                f"duplicate workflow {definition.name!r} version {definition.version!r}: "
                f"already defined by {_origin(existing)}; bump version=... for the new one"
            )
        self.workflows[key] = definition

    def versions(self, name: str) -> list[WorkflowDefinition[..., Any]]:
        """All registered versions of a workflow, oldest first."""
        found = [d for (n, _), d in self.workflows.items() if n == name]
        return sorted(found, key=lambda d: version_key(d.version))

    def active(self, name: str) -> WorkflowDefinition[..., Any]:
        """The version new instances of ``name`` start: the one marked active, else the newest.

        Raises:
            WorkflowNotFoundError: No version of ``name`` is registered.
        """
        versions = self.versions(name)
        if not versions:
            raise WorkflowNotFoundError(f"no workflow named {name!r} is registered")
        marked = [d for d in versions if d.active is True]
        eligible = [d for d in versions if d.active is not False]
        return (marked or eligible or versions)[-1]

    def get(self, name: str, version: str | None = None) -> WorkflowDefinition[..., Any]:
        """A definition by name and version (the active one when ``version`` is None).

        Raises:
            WorkflowNotFoundError: Nothing matches.
        """
        if version is None:
            return self.active(name)
        try:
            return self.workflows[(name, version)]
        except KeyError:
            known = ", ".join(d.version for d in self.versions(name)) or "none"
            raise WorkflowNotFoundError(
                f"workflow {name!r} has no version {version!r} (registered: {known})"
            ) from None

    def by_type(self, workflow_type: str) -> WorkflowDefinition[..., Any] | None:
        """The definition compiled to a Temporal workflow type name, if registered here."""
        for definition in self.workflows.values():
            if definition.workflow_type == workflow_type:
                return definition
        return None


registry = Registry()
"""The registry the decorators write to."""
