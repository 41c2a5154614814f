"""The backends end-to-end tests run on: embedded (`fnbox serve`: SQLite store + SQLite bus)
always; the scale-out processes (`fnbox control|gateway|delivery`) on PostgreSQL + NATS
JetStream ("postgres+nats") when 127.0.0.1:5432/:4222 answer (under CI=true their absence is a
failure), or on NATS with the SQLite registry ("nats", not in the default parametrisation).
Each run gets its own database and bus namespace, dropped afterwards."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
NATS_URL = "nats://127.0.0.1:4222"


@dataclass(frozen=True)
class Backend:
    name: str
    env: dict[str, str]
    scale_out: bool


def _reachable(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def require_services() -> None:
    missing = [
        name for name, port in (("PostgreSQL", 5432), ("NATS", 4222)) if not _reachable(port)
    ]
    if missing:
        reason = f"{' and '.join(missing)} not reachable on 127.0.0.1"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (required under CI=true)")
        pytest.skip(reason)


@contextmanager
def backend(name: str) -> Iterator[Backend]:
    if name == "embedded":
        yield Backend("embedded", {}, scale_out=False)
        return
    require_services()
    if name == "nats":  # the scale-out processes on JetStream; the registry stays SQLite
        namespace = f"e2e{secrets.token_hex(4)}"
        try:
            yield Backend(
                "nats",
                {"FNBOX_BUS__URL": NATS_URL, "FNBOX_BUS__NAMESPACE": namespace},
                scale_out=True,
            )
        finally:
            _drop_namespace(namespace)
        return
    import psycopg

    suffix = secrets.token_hex(4)
    database = f"fnbox_e2e_{suffix}"
    namespace = f"e2e{suffix}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        yield Backend(
            "postgres+nats",
            {
                "FNBOX_STORE__URL": f"postgresql://postgres@127.0.0.1:5432/{database}",
                "FNBOX_BUS__URL": NATS_URL,
                "FNBOX_BUS__NAMESPACE": namespace,
            },
            scale_out=True,
        )
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        _drop_namespace(namespace)


def _drop_namespace(namespace: str) -> None:
    """Delete the JetStream streams of ``namespace`` (names start with it)."""
    import asyncio

    import nats

    async def drop() -> None:
        client = await nats.connect(NATS_URL)
        try:
            jetstream = client.jetstream()
            for stream in await jetstream.streams_info():
                if stream.config.name and stream.config.name.lower().startswith(namespace.lower()):
                    await jetstream.delete_stream(stream.config.name)
        finally:
            await client.close()

    asyncio.run(drop())
