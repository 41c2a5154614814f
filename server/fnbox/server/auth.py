"""Bearer tokens: issue, hash, authenticate, authorise.

A token belongs to one workspace with a role. Roles are ordered:
read-only (get/list) < developer (+ create/update/deploy/restore/invoke/run) < admin
(+ deletes and tokens). A platform-admin token (the bootstrap one; the gateway and delivery
workers use it) may also act in any workspace and create workspaces. Only sha256 of a
token's secret is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from fnbox.server import names
from fnbox.server.cache import ReadCache
from fnbox.server.errors import NotFound, PermissionDenied, Unauthenticated
from fnbox.server.store.base import Role, Store, TokenRecord

SECRET_PREFIX = "fnbox_"
_RANK = {Role.READ_ONLY: 1, Role.DEVELOPER: 2, Role.ADMIN: 3}


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_token(
    workspace_id: str, role: Role, description: str, *, platform_admin: bool = False
) -> tuple[TokenRecord, str]:
    """A new token record and its secret (shown once, stored only hashed)."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(
        id=names.new_id(names.TOKEN),
        workspace_id=workspace_id,
        role=role,
        secret_sha256=hash_secret(secret),
        description=description,
        create_time=datetime.now(UTC),
        platform_admin=platform_admin,
    )
    return record, secret


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's workspace, role and whether it is a platform admin."""

    workspace_id: str
    token_id: str
    role: Role
    platform_admin: bool = False

    @property
    def subject(self) -> str:
        return names.token_name(self.workspace_id, self.token_id)

    def require(self, role: Role) -> None:
        if _RANK[self.role] < _RANK[role]:
            raise PermissionDenied(
                f"this call needs the {role.value.lower().replace('_', '-')} role",
                reason="ROLE_TOO_LOW",
                metadata={"required_role": role.value, "role": self.role.value},
            )

    def require_platform_admin(self) -> None:
        if not self.platform_admin:
            raise PermissionDenied(
                "this call needs a platform-admin token", reason="PLATFORM_ADMIN_REQUIRED"
            )

    def can_access(self, workspace_id: str) -> bool:
        return self.platform_admin or workspace_id == self.workspace_id

    def sees(self, ref: names.Ref, workspace_id: str) -> bool:
        """Whether a resource of ``workspace_id`` that the caller named ``ref`` is visible:
        the caller may access the workspace and the name (if it has one) says that one."""
        named = ref.workspace_id is None or ref.workspace_id == workspace_id
        return named and self.can_access(workspace_id)

    def workspace(self, parent: str) -> str:
        """The workspace a ``parent`` names (empty: the caller's own); NOT_FOUND when the
        caller may not see it (never PERMISSION_DENIED: that would reveal it exists)."""
        workspace_id = names.parse_parent(parent) or self.workspace_id
        if not self.can_access(workspace_id):
            raise NotFound(parent, kind="workspace")
        return workspace_id


class Authenticator:
    """Turns the ``authorization`` metadata of a call into a :class:`Principal`."""

    def __init__(self, store: Store, cache: ReadCache | None = None) -> None:
        self._store = store
        self._cache = cache or ReadCache(store, ttl_s=0)
        # Header value of a valid token → (its digest, the token record, its Principal):
        # while the read cache hands out that same record, a call with the same header is
        # that principal (no parse, hash or new Principal per call). Exact keys only.
        self._known: dict[str, tuple[str, TokenRecord, Principal]] = {}

    def known(self, metadata: Iterable[tuple[str, str | bytes]]) -> Principal | None:
        """The principal of a header that authenticated lately (its token record still
        fresh in the read cache), else None: then ``authenticate``."""
        for key, value in metadata:
            if key == "authorization":
                known = self._known.get(value) if isinstance(value, str) else None
                if known is not None and self._cache.peek("token", known[0]) is known[1]:
                    return known[2]
                return None
        return None

    async def authenticate(self, metadata: Iterable[tuple[str, str | bytes]]) -> Principal:
        header = next((value for key, value in metadata if key == "authorization"), None)
        if header is None:
            raise Unauthenticated("missing authorization metadata", reason="MISSING_TOKEN")
        if isinstance(header, bytes):
            header = header.decode("latin-1")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated("authorization must be 'Bearer <token>'", reason="BAD_TOKEN")
        digest = hash_secret(secret.strip())
        token = await self._cache.get(
            "token", digest, lambda: self._store.get_token_by_hash(digest)
        )
        if token is None:
            raise Unauthenticated("unknown or revoked token", reason="BAD_TOKEN")
        principal = Principal(token.workspace_id, token.id, token.role, token.platform_admin)
        if len(self._known) >= _MAX_KNOWN:
            self._known.clear()
        self._known[header] = (digest, token, principal)
        return principal


_MAX_KNOWN = 4096
