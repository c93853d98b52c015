"""The client: start instances, act on tasks, cancel, pause, and (with a database) query.

Commands go to Temporal; queries read the SQL mirror only. Connected with a
``database_url``, the client also finds a task's instance by the task id alone, scoped to
the caller's tenant, and records terminations (which never reach a worker) in the mirror.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio.client import (
    Client,
    OutboundInterceptor,
    TerminateWorkflowInput,
    WorkflowHandle,
)
from temporalio.client import Interceptor as ClientInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter

from ._bulk import BulkCommands
from ._definition import WorkflowDefinition
from ._delegation import Delegations
from ._details import instance_summary
from ._errors import (
    InvalidInputError,
    MirrorUnavailableError,
    PermissionDeniedError,
    TaskNotFoundError,
    WorkflowNotFoundError,
)
from ._graph_model import GraphDefinition
from ._handle import CommandTrust, InstanceDescription, InstanceHandle
from ._identity import ALL_TENANTS, IdentityProvider
from ._registry import registry
from ._signing import SigningKey
from ._start_checks import check_against_schema, check_args, check_storable_input, refuse_unstorable
from ._types import TaskInfo

__all__ = ["DEFAULT_TASK_QUEUE", "SIGNING_KEY_ENV", "WorkflowClient"]

DEFAULT_TASK_QUEUE = "durable-workflows"
SIGNING_KEY_ENV = "DWF_SIGNING_KEY"
"""Environment variable read for the client's signing key when ``connect`` is given none."""
R = TypeVar("R")


class _TerminationRecorder(ClientInterceptor):
    """Marks an instance TERMINATED in the mirror when this client terminates it."""

    def __init__(self) -> None:
        self.client: WorkflowClient | None = None

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        recorder = self

        class _Outbound(OutboundInterceptor):
            async def terminate_workflow(self, input: TerminateWorkflowInput) -> None:
                await super().terminate_workflow(input)
                if recorder.client is not None:
                    await recorder.client._record_termination(input.id, input.reason)

        return _Outbound(next)


class WorkflowClient(BulkCommands):
    """The application's entry point. Create it with :meth:`connect`.

    Attributes:
        queries: The SQL query API (``sdk.mirror.MirrorQueries``) when connected with a
            database, else None; for a client bound to one tenant, ``sdk.mirror.TenantQueries``
            (every query in that tenant).
        tenant_id: The tenant every command, read and start of this client acts for (None:
            instances started without a tenant, unless a call names one; a client bound to a
            tenant refuses calls naming another; ``ALL_TENANTS``: an administrator's client).
    """

    def __init__(
        self,
        temporal: Client,
        *,
        task_queue: str = DEFAULT_TASK_QUEUE,
        database_url: str | None = None,
        signing_key: SigningKey | str | None = None,
        identity_provider: IdentityProvider | None = None,
        tenant_id: str | None = None,
    ) -> None:
        self._temporal = temporal
        self.task_queue = task_queue
        self.database_url = database_url
        self.tenant_id = tenant_id
        if isinstance(signing_key, str):
            signing_key = SigningKey.parse(signing_key)
        self._trust = CommandTrust(signing_key, identity_provider)
        self._engine: Any = None
        self.queries: Any = None
        self._delegations: Delegations | None = None
        if database_url is not None:
            from .mirror import DelegationStore, MirrorQueries, TenantQueries, create_engine, session_factory

            self._engine = create_engine(database_url)
            self.queries = MirrorQueries(session_factory(self._engine))
            self._delegations = Delegations(self, DelegationStore(self._engine))
            if tenant_id is not None and tenant_id != ALL_TENANTS:
                # A client bound to a tenant queries only its rows (None is "no filter" there).
                self.queries = TenantQueries(self.queries, tenant_id)

    @classmethod
    async def connect(
        cls,
        target: str = "localhost:7233",
        *,
        namespace: str = "default",
        task_queue: str = DEFAULT_TASK_QUEUE,
        database_url: str | None = None,
        signing_key: SigningKey | str | None = None,
        identity_provider: IdentityProvider | None = None,
        tenant_id: str | None = None,
        api_key: str | None = None,
        tls: bool | Any = False,
        **connect_options: Any,
    ) -> WorkflowClient:
        """Connect to Temporal with the pydantic data converter.

        Args:
            target: ``host:port`` of the Temporal frontend.
            namespace: Temporal namespace.
            task_queue: Where new instances are started (the worker's task queue).
            database_url: The SQL mirror, for queries and task look-ups by id.
            signing_key: The application's private key (``sdk.SigningKey`` or
                ``"<key id>:<base64>"``) signing every command that acts as a user; None
                reads ``DWF_SIGNING_KEY``. Workers hold the public key (``docs/security.md``).
            identity_provider: The application's hook user id → ``sdk.Identity`` (groups,
                admin, tenant). With it, callers name the user only.
            tenant_id: The tenant this client acts for (``sdk.ALL_TENANTS``: an
                administrator's client for every tenant).
            api_key: Temporal Cloud API key.
            tls: True, or a ``temporalio.service.TLSConfig`` (implied by an API key).
            **connect_options: Passed to ``temporalio.client.Client.connect``.
        """
        recorder = _TerminationRecorder()
        interceptors = [recorder, *connect_options.pop("interceptors", [])]
        temporal = await Client.connect(
            target,
            namespace=namespace,
            data_converter=pydantic_data_converter,
            api_key=api_key,
            tls=tls or bool(api_key),
            interceptors=interceptors,
            **connect_options,
        )
        if signing_key is None and os.environ.get(SIGNING_KEY_ENV):
            signing_key = os.environ[SIGNING_KEY_ENV]
        client = cls(
            temporal,
            task_queue=task_queue,
            database_url=database_url,
            signing_key=signing_key,
            identity_provider=identity_provider,
            tenant_id=tenant_id,
        )
        recorder.client = client
        return client

    async def close(self) -> None:
        """Release the database connections (Temporal's connection needs no closing)."""
        if self._engine is not None:
            await self._engine.dispose()

    @property
    def temporal(self) -> Client:
        """The underlying temporalio client."""
        return self._temporal

    @property
    def delegations(self) -> Delegations:
        """Out of office: substitutes of absent users (see :class:`sdk.Delegations`).

        Raises:
            MirrorUnavailableError: The client has no ``database_url`` (the table is there).
        """
        if self._delegations is None:
            raise MirrorUnavailableError("delegations live in the SQL mirror: connect with database_url=")
        return self._delegations

    @property
    def identity_provider(self) -> IdentityProvider | None:
        """The application's hook user id → ``sdk.Identity``, when the client was given one."""
        return self._trust.identity_provider

    def _require_queries(self, what: str) -> Any:
        if self.queries is None:
            raise MirrorUnavailableError(f"{what} reads the SQL mirror: connect with database_url=")
        return self.queries

    # -- starting -------------------------------------------------------------------------

    def _definition(
        self, workflow: WorkflowDefinition[..., R] | str, version: str | None
    ) -> WorkflowDefinition[..., R]:
        if isinstance(workflow, WorkflowDefinition):
            if version is None or version == workflow.version:
                return workflow
            workflow = workflow.name
        return registry.get(workflow, version)

    async def _type_from_mirror(self, name: str, version: str | None) -> tuple[str, dict[str, Any]]:
        """The workflow type and stored definition of a definition this process did not import."""
        if self._engine is None:
            raise WorkflowNotFoundError(f"no workflow named {name!r} is registered in this process")
        from sqlalchemy import select

        from .mirror import WorkflowDefinitionModel as D

        stmt = select(D.workflow_type, D.definition_json).where(D.name == name)
        stmt = stmt.where(D.version == version) if version else stmt.where(D.is_active.is_(True))
        async with self._engine.connect() as conn:
            found = (await conn.execute(stmt.limit(1))).first()
        if found is None:
            raise WorkflowNotFoundError(f"no workflow {name!r} (version {version or 'active'}) in the mirror")
        return str(found[0]), dict(found[1] or {})

    async def start(
        self,
        workflow: WorkflowDefinition[..., R] | str,
        *args: Any,
        id: str | None = None,
        version: str | None = None,
        tenant_id: str | None = None,
        created_by: str | None = None,
        task_queue: str | None = None,
        eager: bool = False,
    ) -> InstanceHandle[R]:
        """Start an instance and return its handle.

        Args:
            workflow: A ``@workflow`` definition (that exact version) or a workflow name (its
                active version).
            *args: The workflow's arguments (models, or dicts validated into them here).
            id: The Temporal workflow id (default ``<name>-<uuid4>``).
            version: Start this version instead.
            tenant_id: The tenant the instance belongs to.
            created_by: The user who starts it.
            task_queue: Override the client's task queue.
            eager: Ask Temporal to hand the instance's first workflow task straight back to a
                worker in this process that polls ``task_queue`` through this same client
                (temporalio's eager workflow start): the first step is scheduled without a
                trip through the task queue. Without such a worker (or with no free slot) the
                start is an ordinary one. See docs/performance.md.

        Raises:
            WorkflowNotFoundError: No such workflow or version.
            FormValidationError: An argument does not validate against its model.
            InvalidInputError: A value no mirror database can store (NUL, NaN...).
            PayloadTooLargeError: The input is over ``sdk.MAX_PAYLOAD_BYTES``.
            TypeError: Wrong number of arguments.
        """
        tenant_id = self._scope(tenant_id)
        if tenant_id == ALL_TENANTS:
            raise InvalidInputError("an instance belongs to one tenant: start it with tenant_id=<its tenant>")
        refuse_unstorable(tenant_id=tenant_id, created_by=created_by, id=id)
        definition: WorkflowDefinition[..., R] | None
        try:
            definition = self._definition(workflow, version)
        except WorkflowNotFoundError:
            # A definition this process imported is authoritative; the mirror is asked only
            # about names this process does not know.
            if not isinstance(workflow, str) or registry.versions(workflow) or self._engine is None:
                raise
            definition = None
        if definition is not None:
            workflow_type, name = definition.workflow_type, definition.name
            checked = check_args(definition, args)
            description = definition.description
        else:
            name = str(workflow)
            workflow_type, stored = await self._type_from_mirror(name, version)
            if stored.get("kind") == "graph":  # a graph definition: its one argument is the data
                return await self.start_graph(
                    name,
                    *args,
                    version=version,
                    id=id,
                    tenant_id=tenant_id,
                    created_by=created_by,
                    task_queue=task_queue,
                )
            checked = list(args)
            description = stored.get("description")
            check_against_schema(name, stored.get("input_schema"), checked)
        check_storable_input(checked)
        memo = {k: v for k, v in (("tenant_id", tenant_id), ("created_by", created_by)) if v is not None}
        # Temporal's user metadata: the UI and `temporal workflow describe` show the summary.
        summary = instance_summary(
            name, workflow_type.rpartition("@")[2], tenant_id=tenant_id, created_by=created_by
        )
        handle: WorkflowHandle[Any, R] = await self._temporal.start_workflow(
            workflow_type,
            args=checked,
            id=id or f"{name}-{uuid.uuid4()}",
            task_queue=task_queue or self.task_queue,
            memo=memo or None,
            result_type=definition.return_type if definition else None,
            static_summary=summary,
            static_details=description if isinstance(description, str) and description else None,
            request_eager_start=eager,
        )
        return self._handle_for(handle, definition, tenant_id)

    async def start_graph(
        self,
        graph: GraphDefinition | str,
        data: dict[str, Any] | None = None,
        *,
        version: str | None = None,
        id: str | None = None,
        tenant_id: str | None = None,
        created_by: str | None = None,
        task_queue: str | None = None,
        subgraphs: Mapping[str, GraphDefinition] | None = None,
    ) -> InstanceHandle[Any]:
        """Start an instance of a graph definition, pinned to that definition for its life.

        Args:
            graph: A :class:`sdk.GraphDefinition`, or the name of one registered in the mirror
                (``dwf graph register``; its newest active version unless ``version`` says).
            data: The instance's data (a JSON object, checked against ``data_schema``).
            version: With a name: start this version.
            id: The Temporal workflow id (default ``<name>-<uuid4>``).
            tenant_id: The tenant the instance belongs to.
            created_by: The user who starts it.
            task_queue: Override the client's task queue.
            subgraphs: Graphs its sub-workflow steps run, by ``name`` or ``name@version`` as
                the steps name them (with a database, registered graphs are found there).

        Raises:
            GraphDefinitionError: The definition is invalid (the subclass says how).
            WorkflowNotFoundError: No such registered graph or version.
            FormValidationError: ``data`` does not fit ``data_schema``.
        """
        from ._graph_client import start_graph

        return await start_graph(
            self,
            graph,
            data,
            version=version,
            id=id,
            tenant_id=tenant_id,
            created_by=created_by,
            task_queue=task_queue,
            subgraphs=subgraphs,
        )

    async def register_graph(self, definition: GraphDefinition, *, active: bool | None = True) -> None:
        """Validate a graph and store it in ``workflow_definitions`` (a new version, at run time).

        Workers run it without a restart when they have its step implementations. ``active``
        marks the version active (new instances by name may start it) or inactive.

        Raises:
            GraphDefinitionError: The definition is invalid.
            DefinitionError: That version is registered with other content.
            MirrorUnavailableError: The client has no database.
        """
        from ._graph_client import register_graph

        await register_graph(self, definition, active=active)

    async def send_event(
        self,
        event: str,
        key: str,
        payload: Any = None,
        *,
        workflow_id: str | None = None,
        tenant_id: str | None = None,
    ) -> str:
        """Send the external event ``event`` with correlation key ``key`` and ``payload``.

        Without ``workflow_id``, the instance is the one (in the client's tenant) whose event
        step waits for that event and key, found in the mirror. Returns its workflow id.

        Raises:
            InstanceNotFoundError: No instance waits for it.
            InvalidInputError: A value no database can store.
        """
        from ._graph_client import send_event

        return await send_event(self, event, key, payload, workflow_id=workflow_id, tenant_id=tenant_id)

    def _handle_for(
        self,
        handle: WorkflowHandle[Any, R],
        definition: WorkflowDefinition[..., R] | None,
        tenant_id: str | None,
    ) -> InstanceHandle[R]:
        refuse_unstorable(tenant_id=tenant_id, workflow_id=handle.id)
        scope = self._scope(tenant_id)
        return InstanceHandle(handle, definition, tenant_id=scope, queries=self.queries, trust=self._trust)

    # -- instances and tasks by id ---------------------------------------------------------

    def get_instance(
        self, workflow_id: str, run_id: str | None = None, *, tenant_id: str | None = None
    ) -> InstanceHandle[Any]:
        """A handle on an existing instance by its workflow id (scoped to ``tenant_id``)."""
        handle: WorkflowHandle[Any, Any] = self._temporal.get_workflow_handle(workflow_id, run_id=run_id)
        return self._handle_for(handle, None, tenant_id)

    async def task_handle(
        self, task_id: str | uuid.UUID, *, tenant_id: str | None = None, workflow_id: str | None = None
    ) -> InstanceHandle[Any]:
        """The handle of the instance that holds a task, found in the mirror by task id.

        Raises:
            TaskNotFoundError: No such task in the caller's tenant.
            MirrorUnavailableError: No ``workflow_id`` and no database.
        """
        refuse_unstorable(task_id=str(task_id), tenant_id=tenant_id, workflow_id=workflow_id)
        if workflow_id is None:
            scope = self._scope(tenant_id)
            scope = None if scope == ALL_TENANTS else scope
            row = await self._require_queries("finding a task by id").get_task(task_id, tenant_id=scope)
            if scope is None and row.tenant_id is not None and self._scope(tenant_id) != ALL_TENANTS:
                # The mirror reads None as "no filter"; here None means "no tenant".
                raise TaskNotFoundError(f"no task {task_id}")
            workflow_id = row.workflow_id
        return self.get_instance(workflow_id, tenant_id=tenant_id)

    async def complete_task(
        self,
        task_id: str | uuid.UUID,
        data: BaseModel | dict[str, Any],
        *,
        user: str,
        groups: Sequence[str] | None = None,
        comment: str | None = None,
        admin: bool | None = None,
        tenant_id: str | None = None,
        workflow_id: str | None = None,
    ) -> TaskInfo:
        """Complete a human task (see :meth:`InstanceHandle.complete_task`)."""
        handle = await self.task_handle(task_id, tenant_id=tenant_id, workflow_id=workflow_id)
        return await handle.complete_task(
            task_id, data, user=user, groups=groups, comment=comment, admin=admin
        )

    async def claim_task(
        self,
        task_id: str | uuid.UUID,
        *,
        user: str,
        groups: Sequence[str] | None = None,
        admin: bool | None = None,
        tenant_id: str | None = None,
        workflow_id: str | None = None,
    ) -> TaskInfo:
        """Claim a group task (see :meth:`InstanceHandle.claim_task`)."""
        handle = await self.task_handle(task_id, tenant_id=tenant_id, workflow_id=workflow_id)
        return await handle.claim_task(task_id, user=user, groups=groups, admin=admin)

    async def release_task(
        self,
        task_id: str | uuid.UUID,
        *,
        user: str,
        groups: Sequence[str] | None = None,
        admin: bool | None = None,
        tenant_id: str | None = None,
        workflow_id: str | None = None,
    ) -> TaskInfo:
        """Release a claimed task (see :meth:`InstanceHandle.release_task`)."""
        handle = await self.task_handle(task_id, tenant_id=tenant_id, workflow_id=workflow_id)
        return await handle.release_task(task_id, user=user, groups=groups, admin=admin)

    async def reassign_task(
        self,
        task_id: str | uuid.UUID,
        *,
        user: str,
        reason: str,
        to_user: str | None = None,
        to_group: str | None = None,
        groups: Sequence[str] | None = None,
        admin: bool | None = None,
        tenant_id: str | None = None,
        workflow_id: str | None = None,
        on_behalf_of: str | None = None,
    ) -> TaskInfo:
        """Reassign a task (see :meth:`InstanceHandle.reassign_task`)."""
        handle = await self.task_handle(task_id, tenant_id=tenant_id, workflow_id=workflow_id)
        return await handle.reassign_task(
            task_id,
            user=user,
            to_user=to_user,
            to_group=to_group,
            reason=reason,
            groups=groups,
            admin=admin,
            on_behalf_of=on_behalf_of,
        )

    async def comment_task(
        self,
        task_id: str | uuid.UUID,
        body: str,
        *,
        user: str,
        groups: Sequence[str] | None = None,
        admin: bool | None = None,
        tenant_id: str | None = None,
        workflow_id: str | None = None,
    ) -> TaskInfo:
        """Comment on a task (see :meth:`InstanceHandle.comment_task`)."""
        handle = await self.task_handle(task_id, tenant_id=tenant_id, workflow_id=workflow_id)
        return await handle.comment_task(task_id, body, user=user, groups=groups, admin=admin)

    async def vote_task(
        self,
        task_id: str | uuid.UUID,
        data: BaseModel | dict[str, Any],
        *,
        user: str,
        groups: Sequence[str] | None = None,
        comment: str | None = None,
        tenant_id: str | None = None,
        workflow_id: str | None = None,
    ) -> TaskInfo:
        """Vote on a quorum task (see :meth:`InstanceHandle.vote_task`)."""
        handle = await self.task_handle(task_id, tenant_id=tenant_id, workflow_id=workflow_id)
        return await handle.vote_task(task_id, data, user=user, groups=groups, comment=comment)

    async def prioritize_task(
        self,
        task_id: str | uuid.UUID,
        *,
        user: str,
        priority: int | None = None,
        follow_up_at: datetime | None = None,
        reason: str | None = None,
        groups: Sequence[str] | None = None,
        admin: bool | None = None,
        tenant_id: str | None = None,
        workflow_id: str | None = None,
    ) -> TaskInfo:
        """Change a task's priority and/or follow-up date (see :meth:`InstanceHandle.prioritize_task`)."""
        handle = await self.task_handle(task_id, tenant_id=tenant_id, workflow_id=workflow_id)
        return await handle.prioritize_task(
            task_id,
            user=user,
            priority=priority,
            follow_up_at=follow_up_at,
            reason=reason,
            groups=groups,
            admin=admin,
        )

    async def escalate_task(
        self,
        task_id: str | uuid.UUID,
        *,
        user: str,
        reason: str | None = None,
        groups: Sequence[str] | None = None,
        admin: bool | None = None,
        tenant_id: str | None = None,
        workflow_id: str | None = None,
    ) -> TaskInfo:
        """Apply the next link of a task's escalation chain now (see :meth:`InstanceHandle.escalate_task`)."""
        handle = await self.task_handle(task_id, tenant_id=tenant_id, workflow_id=workflow_id)
        return await handle.escalate_task(task_id, user=user, reason=reason, groups=groups, admin=admin)

    async def cancel(
        self,
        workflow_id: str,
        *,
        reason: str | None = None,
        by: str | None = None,
        tenant_id: str | None = None,
        admin: bool | None = None,
    ) -> None:
        """Cancel an instance by workflow id (``admin`` as for :meth:`InstanceHandle.cancel`)."""
        await self.get_instance(workflow_id, tenant_id=tenant_id).cancel(reason=reason, by=by, admin=admin)

    async def describe(self, workflow_id: str, *, tenant_id: str | None = None) -> InstanceDescription:
        """Describe an instance by workflow id."""
        return await self.get_instance(workflow_id, tenant_id=tenant_id).describe()

    async def result(self, workflow_id: str, *, tenant_id: str | None = None) -> Any:
        """Wait for an instance's result by workflow id (scoped to the tenant, as every read)."""
        return await self.get_instance(workflow_id, tenant_id=tenant_id).result()

    def _scope(self, tenant_id: str | None) -> str | None:
        """The tenant a call acts and reads for: its own, else the client's.

        A client bound to one tenant (``connect(tenant_id="acme")``) stays in it: a call naming
        another (``ALL_TENANTS`` included) is refused, so only an administrator's client
        (``ALL_TENANTS``) or an unbound one chooses the tenant per call.
        """
        if tenant_id is None or tenant_id == self.tenant_id:
            return self.tenant_id
        if self.tenant_id is not None and self.tenant_id != ALL_TENANTS:
            raise PermissionDeniedError(f"this client acts for tenant {self.tenant_id!r}, not {tenant_id!r}")
        return tenant_id

    async def _record_termination(self, workflow_id: str, reason: str | None) -> None:
        if self._engine is None:
            return
        from .mirror import record_termination

        await record_termination(self._engine, workflow_id, reason)
