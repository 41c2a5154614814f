"""DeadLetterService: list, inspect, replay and purge pipeline failures; record and claim
them for the gateway and delivery workers (platform-admin tokens)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fnbox.functions.v1 import dead_letters_pb2 as dpb
from fnbox.server import names
from fnbox.server.auth import Principal
from fnbox.server.errors import InvalidArgument, NotFound
from fnbox.server.servicers.base import Servicer, rpc
from fnbox.server.store.base import Role
from fnbox.server.store.dead_letters import DeadLetterRow, DeadLetterStore

__all__ = ["DeadLetterServicer"]

_NAME = re.compile(r"^(?:workspaces/([a-z]{2}_[a-z0-9]+)/deadLetters/)?(dl_[a-z0-9]+)$")
_MAX_SELECTION = 10_000
_TOKEN_KIND = "deadLetters"


class DeadLetterServicer(Servicer):
    """Registered with ``dead_letters_pb2_grpc.add_DeadLetterServiceServicer_to_server``."""

    @property
    def _table(self) -> DeadLetterStore:
        return self.store.dead_letters()

    @rpc(Role.READ_ONLY)
    async def ListDeadLetters(
        self, request: dpb.ListDeadLettersRequest, principal: Principal
    ) -> dpb.ListDeadLettersResponse:
        workspace_id = principal.workspace(request.parent)
        instance_id = self._instance_id(principal, request.instance) if request.instance else None
        after = names.decode_page_token(_TOKEN_KIND, request.page_token)
        page = await self._table.list_page(
            workspace_id,
            instance_id=instance_id,
            after=after,
            limit=names.page_size(request.page_size),
        )
        return dpb.ListDeadLettersResponse(
            dead_letters=[_message(row) for row in page.items],
            next_page_token=names.encode_page_token(_TOKEN_KIND, page.next_after)
            if page.next_after is not None
            else "",
            total_size=page.total_size,
        )

    @rpc(Role.READ_ONLY)
    async def GetDeadLetter(
        self, request: dpb.GetDeadLetterRequest, principal: Principal
    ) -> dpb.DeadLetter:
        row = await self._find(principal, request.name)
        return _message(row)

    @rpc(Role.DEVELOPER)
    async def ReplayDeadLetters(
        self, request: dpb.ReplayDeadLettersRequest, principal: Principal
    ) -> dpb.ReplayDeadLettersResponse:
        if not (request.names or request.instance):
            raise InvalidArgument("give names or an instance")
        if request.version < 0:
            raise InvalidArgument("version must be 0 (deployed) or a version number")
        scope, ids, instance_id = await self._selection(
            principal, request.parent, list(request.names), request.instance
        )
        if request.version:
            await self._check_version(principal, ids, instance_id, request.version)
        rows = await self._table.mark_replay(
            scope, ids=ids, instance_id=instance_id, version=request.version
        )
        return dpb.ReplayDeadLettersResponse(queued=len(rows))

    @rpc(Role.DEVELOPER)
    async def PurgeDeadLetters(
        self, request: dpb.PurgeDeadLettersRequest, principal: Principal
    ) -> dpb.PurgeDeadLettersResponse:
        if not (request.names or request.instance or request.all):
            raise InvalidArgument("give names, an instance, or all")
        scope, ids, instance_id = await self._selection(
            principal, request.parent, list(request.names), request.instance
        )
        purged = await self._table.purge(scope, ids=ids, instance_id=instance_id)
        return dpb.PurgeDeadLettersResponse(purged=purged)

    @rpc(Role.ADMIN)
    async def RecordDeadLetters(
        self, request: dpb.RecordDeadLettersRequest, principal: Principal
    ) -> dpb.RecordDeadLettersResponse:
        principal.require_platform_admin()
        now = datetime.now(UTC)
        rows: list[DeadLetterRow] = []
        for dead_letter in request.dead_letters:
            if not _NAME.match(dead_letter.id):
                raise InvalidArgument(f"{dead_letter.id!r} is not a dead-letter id")
            ref = names.parse_instance(dead_letter.instance)
            instance = await self.store.get_instance(ref.id)
            workspace_id = instance.workspace_id if instance is not None else ref.workspace_id
            if workspace_id is None:
                raise NotFound(dead_letter.instance, kind="instance")
            stored = dpb.DeadLetter()
            stored.CopyFrom(dead_letter)
            stored.name = f"{names.workspace_name(workspace_id)}/deadLetters/{dead_letter.id}"
            stored.instance = names.instance_name(workspace_id, ref.id)
            stored.create_time.FromDatetime(now)
            stored.replay_pending = False
            rows.append(
                DeadLetterRow(
                    id=dead_letter.id,
                    workspace_id=workspace_id,
                    instance_id=ref.id,
                    create_time=now,
                    body=stored.SerializeToString(),
                )
            )
        recorded = await self._table.record(rows)
        return dpb.RecordDeadLettersResponse(recorded=recorded)

    @rpc(Role.ADMIN)
    async def ClaimReplays(
        self, request: dpb.ClaimReplaysRequest, principal: Principal
    ) -> dpb.ClaimReplaysResponse:
        principal.require_platform_admin()
        rows = await self._table.claim_replays(
            limit=max(1, min(request.limit or 100, 1000)),
            lease_seconds=float(request.lease_seconds or 60),
        )
        return dpb.ClaimReplaysResponse(dead_letters=[_message(row) for row in rows])

    async def _find(self, principal: Principal, name: str) -> DeadLetterRow:
        match = _NAME.match(name)
        if match is None:
            raise InvalidArgument(f"{name!r} is not a dead-letter name or id")
        row = await self._table.get(match.group(2))
        if row is None or (match.group(1) and match.group(1) != row.workspace_id):
            raise NotFound(name, kind="dead letter")
        self.check_workspace(principal, row.workspace_id, name, "dead letter")
        return row

    async def _selection(
        self, principal: Principal, parent: str, given: list[str], instance: str
    ) -> tuple[str | None, list[str] | None, str | None]:
        """(workspace scope, ids, instance id). Named dead letters are checked one by one, so
        their scope is None (they may span workspaces for a platform admin)."""
        if given:
            if len(given) > _MAX_SELECTION:
                raise InvalidArgument(f"at most {_MAX_SELECTION} names at once")
            return None, [(await self._find(principal, name)).id for name in given], None
        if instance:
            ref = names.parse_instance(instance)
            workspace_id = ref.workspace_id or principal.workspace(parent)
            if not principal.can_access(workspace_id):
                raise NotFound(instance, kind="instance")
            return workspace_id, None, ref.id
        return principal.workspace(parent), None, None

    def _instance_id(self, principal: Principal, instance: str) -> str:
        ref = names.parse_instance(instance)
        if ref.workspace_id is not None and not principal.can_access(ref.workspace_id):
            raise NotFound(instance, kind="instance")
        return ref.id

    async def _check_version(
        self, principal: Principal, ids: list[str] | None, instance_id: str | None, version: int
    ) -> None:
        instance_ids = {instance_id} if instance_id else set()
        for dead_letter_id in ids or []:
            row = await self._table.get(dead_letter_id)
            if row is not None:
                instance_ids.add(row.instance_id)
        for iid in instance_ids:
            instance = await self.store.get_instance(iid)
            if instance is None or not principal.can_access(instance.workspace_id):
                raise NotFound(iid, kind="instance")
            if await self.store.get_version(instance.function_id, version) is None:
                raise InvalidArgument(
                    f"function {instance.function_id} has no version {version}",
                    reason="VERSION_NOT_FOUND",
                    metadata={"version": str(version)},
                )


def _message(row: DeadLetterRow) -> dpb.DeadLetter:
    message = dpb.DeadLetter.FromString(row.body)
    message.replay_pending = row.replay_pending
    message.replay_version = row.replay_version
    return message
