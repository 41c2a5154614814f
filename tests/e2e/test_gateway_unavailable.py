"""The gateway in-process over a real control service and a real SQLite bus: 429 when
overloaded, 503 when the bus or the control service is down (nothing acknowledged)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from fnbox.bus import Bus
from fnbox.delivery.control import ControlPlane
from fnbox.gateway.service import GatewayService
from fnbox.gateway.settings import GatewaySettings
from fnbox.server.app import ControlService

from tests.e2e import pipeline

pytestmark = pytest.mark.timeout(60)

JSON = {"content-type": "application/json"}


async def _gateway(
    control: ControlService, tmp_path: Path, settings: GatewaySettings
) -> tuple[GatewayService, str, ControlPlane, Bus]:
    gateway, src, plane, bus = await pipeline.gateway_of(control, tmp_path, settings)
    return gateway, f"http://127.0.0.1:{gateway.port}/v1/sources/{src.id}", plane, bus


async def test_overload_is_429(control: ControlService, tmp_path: Path) -> None:
    settings = GatewaySettings(listen="127.0.0.1:0", max_in_flight=0)
    gateway, url, plane, bus = await _gateway(control, tmp_path, settings)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=b"{}", headers=JSON) as response:
                assert response.status == 429 and response.headers["Retry-After"]
    finally:
        await gateway.stop()
        await plane.close()
        await bus.close()


async def test_bus_down_is_503_and_control_down_is_503(
    control: ControlService, tmp_path: Path
) -> None:
    settings = GatewaySettings(listen="127.0.0.1:0", instance_cache_seconds=0)
    gateway, url, plane, bus = await _gateway(control, tmp_path, settings)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=b"{}", headers=JSON) as response:
                assert response.status == 202
            await bus.close()  # the bus goes away
            async with session.post(url, data=b"{}", headers=JSON) as response:
                assert response.status == 503
            await control.stop()  # and the control service (no cached lookup to fall back on)
            gateway.instances.invalidate(url.rsplit("/", 1)[1])
            async with session.post(url, data=b"{}", headers=JSON) as response:
                assert response.status == 503
    finally:
        await gateway.stop()
        await plane.close()
        await bus.close()
