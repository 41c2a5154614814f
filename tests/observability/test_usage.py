"""Usage metering: execution milliseconds per function per day, flushed to the store, and
``fnbox usage``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fnbox.client import FnboxClient, NotFound
from fnbox.client.observability import ObservabilityAPI
from fnbox.server.app import ControlService
from fnbox.server.settings import load_settings

from tests.conftest import ServerFactory
from tests.observability.helpers import FAILING, Cli, deployed, track


async def test_usage_accumulates_per_function_and_day_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        data_dir=tmp_path / "data",
        grpc={"listen": "127.0.0.1:0"},
        executor={"warm_workers": 1},
        telemetry={"usage_flush_s": 3600},  # only the shutdown flush writes
    )
    service = ControlService(settings)
    await service.start()
    token = (tmp_path / "data" / "admin.token").read_text().strip()
    try:
        async with FnboxClient(service.address, token) as client:
            fn = await deployed(client, "metered", FAILING)
            other = await deployed(client, "other", FAILING)
            results = [await client.invoke(fn.id, event=track(n, fail=n == 2)) for n in range(3)]
            await client.invoke(other.id, event=track(0))
            api = ObservabilityAPI(client.transport)
            usage = await api.usage(function=fn.id)  # not written yet: this replica's memory
    finally:
        await service.stop()  # writes what is left
    today = datetime.now(UTC).date()
    [record] = usage.records
    assert record.function == fn.name and record.display_name == "metered"
    assert (record.day.year, record.day.month, record.day.day) == (
        today.year,
        today.month,
        today.day,
    )
    assert record.invocations == 3 and record.errors == 1
    assert record.execution_ms == pytest.approx(sum(r.duration_ms for r in results))
    assert usage.total_execution_ms == pytest.approx(record.execution_ms)

    again = ControlService(settings)
    await again.start()
    try:
        async with FnboxClient(again.address, token) as client:
            api = ObservabilityAPI(client.transport)
            stored = await api.usage()  # the workspace: both functions, from the store
            assert {r.display_name: r.invocations for r in stored.records} == {
                "metered": 3,
                "other": 1,
            }
            assert stored.total_invocations == 4 and stored.total_errors == 1
            tomorrow = today + timedelta(days=1)
            assert (await api.usage(since=tomorrow)).records == []
            with pytest.raises(NotFound):
                await api.usage(function="fn_doesnotexist")
    finally:
        await again.stop()


async def test_fnbox_usage_prints_the_execution_time(server_factory: ServerFactory) -> None:
    server = await server_factory()
    async with FnboxClient(server.address, server.admin_token) as client:
        fn = await deployed(client, "billed", FAILING)
        result = await client.invoke(fn.id, event=track(1))
    assert server.service.observability is not None
    await server.service.observability.usage.flush()
    cli = Cli(server.address, server.admin_token)

    code, out, err = await cli.run("usage", fn.id)
    assert code == 0, err
    header, row, total = out.splitlines()
    assert header.split()[:3] == ["DAY", "FUNCTION", "NAME"]
    assert row.split()[:3] == [datetime.now(UTC).date().isoformat(), fn.id, "billed"]
    assert row.split()[3:] == [f"{result.duration_ms:.0f}", "1", "0"]
    assert total == f"total: {result.duration_ms:.0f} ms in 1 invocation(s), 0 error(s)"

    code, out, _ = await cli.run("--output", "json", "usage", "--since", "2000-01-01")
    document = json.loads(out)
    assert document["usage"][0]["function"] == fn.name
    assert document["usage"][0]["executionMs"] == pytest.approx(result.duration_ms, abs=0.001)
    assert document["totalInvocations"] == 1

    code, _, err = await cli.run("usage", "--since", "yesterday")
    assert code == 2 and "YYYY-MM-DD" in err
