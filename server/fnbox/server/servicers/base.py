"""What every servicer method shares: authenticate, check the role, translate errors."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol, TypeVar

import grpc
from fnbox.server.auth import Authenticator, Principal
from fnbox.server.errors import InvalidArgument, NotFound, rpc_status_of
from fnbox.server.secrets import SecretBox
from fnbox.server.settings import Settings
from fnbox.server.store.base import Role, Store
from fnbox.server.telemetry import call_metadata
from grpc_status import rpc_status

S = TypeVar("S", bound="HasDeps")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


@dataclass(frozen=True, slots=True)
class Deps:
    """What the servicers work with."""

    store: Store
    auth: Authenticator
    box: SecretBox
    settings: Settings


class HasDeps(Protocol):
    deps: Deps


class Servicer:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.store = deps.store

    def check_workspace(
        self, principal: Principal, workspace_id: str, name: str, kind: str
    ) -> None:
        """NOT_FOUND (never PERMISSION_DENIED) unless the caller may see ``workspace_id``."""
        if not principal.can_access(workspace_id):
            raise NotFound(name, kind=kind)


async def abort(context: grpc.aio.ServicerContext[Any, Any], exc: BaseException) -> NoReturn:
    """End the call with the status that describes ``exc`` (the one translation point)."""
    status = rpc_status.to_status(rpc_status_of(exc))
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("abort returned")  # pragma: no cover


async def authorize(
    deps: Deps, context: grpc.aio.ServicerContext[Any, Any], role: Role
) -> Principal:
    metadata = call_metadata(context)
    principal = deps.auth.known(metadata) or await deps.auth.authenticate(metadata)
    principal.require(role)
    return principal


def rpc(
    role: Role,
) -> Callable[
    [Callable[[S, Req, Principal], Awaitable[Resp]]],
    Callable[[S, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]],
]:
    """A unary servicer method that needs ``role``: the wrapped method gets the
    :class:`Principal` instead of the context; any exception ends the call with its status."""

    def wrap(
        method: Callable[[S, Req, Principal], Awaitable[Resp]],
    ) -> Callable[[S, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]]:
        @functools.wraps(method)
        async def handler(
            self: S, request: Req, context: grpc.aio.ServicerContext[Req, Resp]
        ) -> Resp:
            try:
                # authorize, inline (one coroutine less per call)
                auth = self.deps.auth
                metadata = call_metadata(context)
                principal = auth.known(metadata) or await auth.authenticate(metadata)
                principal.require(role)
                return await method(self, request, principal)
            except Exception as exc:
                await abort(context, exc)

        return handler

    return wrap


def update_paths(paths: Iterable[str], is_set: Mapping[str, bool]) -> set[str]:
    """The fields an Update changes: the mask's paths (each must be a key of ``is_set``), or,
    for an empty mask, every field whose value is set."""
    chosen = set(paths)
    for path in chosen:
        if path not in is_set:
            raise InvalidArgument(
                f"cannot update {path!r}; paths are {', '.join(is_set)}",
                reason="INVALID_UPDATE_MASK",
                metadata={"path": path},
            )
    return chosen or {path for path, value in is_set.items() if value}
