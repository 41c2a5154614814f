"""First start: a default workspace and a platform-admin token in ``<data dir>/admin.token``."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from fnbox.server import names
from fnbox.server.auth import hash_secret, new_token
from fnbox.server.store.base import Role, Store, WorkspaceRecord

ADMIN_TOKEN_FILE = "admin.token"

log = logging.getLogger(__name__)


async def bootstrap(store: Store, data_dir: Path, *, display_name: str) -> Path | None:
    """Make the first workspace and its platform-admin token when the store has none; the
    token goes to ``admin.token`` (mode 0600). Returns that path, or None when the store was
    bootstrapped already. The token file is never overwritten and the token never logged."""
    path = data_dir / ADMIN_TOKEN_FILE
    workspace = WorkspaceRecord(
        id=names.new_id(names.WORKSPACE), display_name=display_name, create_time=datetime.now(UTC)
    )
    token, secret = new_token(
        workspace.id, Role.ADMIN, "bootstrap platform admin", platform_admin=True
    )
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        known = await store.get_token_by_hash(hash_secret(read_admin_token(data_dir) or ""))
        if known is None:
            log.warning("%s holds a token this registry does not know", path)
        return None
    try:
        created = await store.bootstrap(workspace, token)
        if created:
            os.write(fd, (secret + "\n").encode())
    finally:
        os.close(fd)
    if not created:
        path.unlink()
        return None
    return path


def read_admin_token(data_dir: Path) -> str | None:
    """The platform-admin token of ``data_dir``, if its file is there."""
    try:
        return (data_dir / ADMIN_TOKEN_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None
