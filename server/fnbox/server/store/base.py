"""The registry store: what the control service keeps, independent of the database.

Records are plain frozen data. Ids are globally unique, so ``get_*`` take an id alone and the
caller checks the record's workspace against its principal; listings are per workspace.
Listings page by an opaque integer position (``after``) that each implementation defines
(a sequence column here); ``limit`` rows are returned plus whether more exist.

Every method is one transaction. Implementations: :mod:`fnbox.server.store.sqlite` and a
PostgreSQL one with the same behaviour (tested by the same suite).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Generic, TypeVar

from fnbox.executor.types import FunctionType

if TYPE_CHECKING:
    from fnbox.server.store.dead_letters import DeadLetterStore
    from fnbox.server.store.observability import ObservabilityStore


T = TypeVar("T")


class Role(StrEnum):
    READ_ONLY = "READ_ONLY"
    DEVELOPER = "DEVELOPER"
    ADMIN = "ADMIN"


class SettingType(StrEnum):
    STRING = "STRING"
    BOOLEAN = "BOOLEAN"
    ARRAY = "ARRAY"
    TEXT_MAP = "TEXT_MAP"


@dataclass(frozen=True, slots=True)
class SettingDef:
    name: str
    type: SettingType
    label: str = ""
    description: str = ""
    required: bool = False
    sensitive: bool = False


@dataclass(frozen=True, slots=True)
class WorkspaceRecord:
    id: str
    display_name: str
    create_time: datetime


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    workspace_id: str
    role: Role
    secret_sha256: str
    description: str
    create_time: datetime
    platform_admin: bool = False


@dataclass(frozen=True, slots=True)
class FunctionRecord:
    """A function with the code and schema of its latest version."""

    id: str
    workspace_id: str
    display_name: str
    type: FunctionType
    code: str
    settings_schema: tuple[SettingDef, ...]
    batch_max_count: int
    batch_max_wait_ms: int
    timeout_ms: int
    memory_mib: int
    latest_version: int
    deployed_version: int
    create_time: datetime
    update_time: datetime
    deploy_time: datetime | None = None
    no_network: bool = False


@dataclass(frozen=True, slots=True)
class VersionRecord:
    function_id: str
    version: int
    code: str
    settings_schema: tuple[SettingDef, ...]
    author: str
    create_time: datetime
    deploy_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class WebhookAuthRecord:
    """How the gateway authenticates a source's webhooks; ``secret`` is encrypted."""

    mode: str
    header: str
    secret: str


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """An instance. ``settings`` is a JSON object of the non-sensitive values;
    ``secret_settings`` maps each sensitive setting to its encrypted value (never clear).
    ``sources`` and ``insert_instance_id`` are ids of instances of the same workspace."""

    id: str
    workspace_id: str
    function_id: str
    function_type: FunctionType
    display_name: str
    settings: bytes
    secret_settings: dict[str, str]
    enabled: bool
    create_time: datetime
    update_time: datetime
    sources: tuple[str, ...] = ()
    insert_instance_id: str = ""
    webhook_auth: WebhookAuthRecord | None = None


@dataclass(frozen=True, slots=True)
class FunctionChanges:
    """What UpdateFunction changes; None leaves a field as it is. ``code``/``settings_schema``
    that differ from the latest version make a new version authored by ``author``."""

    author: str
    display_name: str | None = None
    code: str | None = None
    settings_schema: tuple[SettingDef, ...] | None = None
    batch_max_count: int | None = None
    batch_max_wait_ms: int | None = None
    timeout_ms: int | None = None
    memory_mib: int | None = None
    no_network: bool | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing: ``next_after`` is where the next page starts (None: no more)."""

    items: list[T]
    next_after: int | None
    total_size: int = 0


class Store(abc.ABC):
    """The registry. All methods are coroutines; each is one transaction.

    ``generation`` changes after every committed write made through this object (caches of
    reads compare it, see :mod:`fnbox.server.cache`).
    """

    generation: int = 0

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and apply pending schema migrations."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    # Workspaces and tokens.

    @abc.abstractmethod
    async def bootstrap(self, workspace: WorkspaceRecord, token: TokenRecord) -> bool:
        """Create the first workspace and its token when the store has no workspace yet;
        False (and nothing written) when one exists."""

    @abc.abstractmethod
    async def create_workspace(self, workspace: WorkspaceRecord, token: TokenRecord) -> None:
        """Create a workspace together with its first admin token."""

    @abc.abstractmethod
    async def get_workspace(self, workspace_id: str) -> WorkspaceRecord | None: ...

    @abc.abstractmethod
    async def create_token(self, token: TokenRecord) -> None: ...

    @abc.abstractmethod
    async def get_token_by_hash(self, secret_sha256: str) -> TokenRecord | None: ...

    @abc.abstractmethod
    async def list_tokens(self, workspace_id: str) -> list[TokenRecord]: ...

    @abc.abstractmethod
    async def delete_token(self, workspace_id: str, token_id: str) -> bool: ...

    # Functions and versions.

    @abc.abstractmethod
    async def create_function(
        self, function: FunctionRecord, *, author: str, request_id: str = ""
    ) -> FunctionRecord:
        """Insert a function and its version 1 (code and schema from ``function``). With a
        ``request_id`` already used in the workspace for a function that still exists, return
        that function instead."""

    @abc.abstractmethod
    async def get_function(self, function_id: str) -> FunctionRecord | None: ...

    @abc.abstractmethod
    async def list_functions(
        self,
        workspace_id: str,
        *,
        type: FunctionType | None,
        after: int | None,
        limit: int,
    ) -> Page[FunctionRecord]: ...

    @abc.abstractmethod
    async def update_function(
        self, function_id: str, changes: FunctionChanges
    ) -> FunctionRecord | None:
        """Apply ``changes``; a new latest version when code or schema differ. None when the
        function does not exist."""

    @abc.abstractmethod
    async def delete_function(self, function_id: str, *, force: bool) -> bool | None:
        """True when deleted, False when it has instances and not ``force``, None when absent."""

    @abc.abstractmethod
    async def get_version(self, function_id: str, version: int) -> VersionRecord | None: ...

    @abc.abstractmethod
    async def list_versions(
        self, function_id: str, *, after: int | None, limit: int
    ) -> Page[VersionRecord]:
        """Newest first; ``after`` is the version number the previous page ended with."""

    @abc.abstractmethod
    async def deploy_version(
        self, function_id: str, version: int, *, when: datetime
    ) -> FunctionRecord | None:
        """Mark ``version`` deployed (it must exist). None when function or version is absent."""

    @abc.abstractmethod
    async def restore_version(
        self, function_id: str, version: int, *, author: str
    ) -> VersionRecord | None:
        """Copy ``version`` to a new latest version. None when function or version is absent."""

    # Instances.

    @abc.abstractmethod
    async def create_instance(
        self, instance: InstanceRecord, *, request_id: str = ""
    ) -> InstanceRecord:
        """Insert an instance (idempotent by ``request_id`` like :meth:`create_function`)."""

    @abc.abstractmethod
    async def get_instance(self, instance_id: str) -> InstanceRecord | None: ...

    @abc.abstractmethod
    async def list_instances(
        self,
        workspace_id: str,
        *,
        function_id: str | None,
        after: int | None,
        limit: int,
    ) -> Page[InstanceRecord]: ...

    @abc.abstractmethod
    async def update_instance(self, instance: InstanceRecord) -> InstanceRecord | None:
        """Replace display name, settings, enabled and sources. None when absent."""

    @abc.abstractmethod
    async def delete_instance(self, instance_id: str) -> bool: ...

    # The pipeline's dead letters (their own module).

    def dead_letters(self) -> DeadLetterStore:
        """The dead-letter table of this store."""
        raise NotImplementedError

    def observability(self) -> ObservabilityStore:
        """The usage and function-log tables of this store."""
        raise NotImplementedError
