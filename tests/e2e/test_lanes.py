"""Invocation lanes in-process over a real control service: each lane has its own
InvokeStream, opened on demand and closed when idle; results name the version that ran and
the handlers it defines."""

from __future__ import annotations

from pathlib import Path

import pytest
from fnbox.client import FnboxClient, Unavailable
from fnbox.delivery.control import ControlPlane
from fnbox.functions.v1 import invocation_pb2, resources_pb2
from fnbox.server.app import ControlService

from tests.e2e import pipeline
from tests.e2e.system import eventually

pytestmark = pytest.mark.timeout(60)

# Handlers as the worker finds them after the top level ran: not the comment's onBatch.
CODE = """
// onBatch(events) is for later
async function onTrack(event) {}
onIdentify = async function (event) {}
"""
EVENT = b'{"type":"track","event":"e","userId":"u"}'


async def test_a_lane_closes_its_idle_stream_and_reopens_it(
    control: ControlService, tmp_path: Path
) -> None:
    token = (tmp_path / "admin.token").read_text().strip()
    async with FnboxClient(control.address, token) as client:
        fn = await pipeline.deployed(client, "lanes", resources_pb2.FUNCTION_TYPE_DESTINATION, CODE)
    plane = ControlPlane(control.address, token, stream_idle_seconds=0.3)
    try:
        lane = plane.lane("deliveries.a")
        assert plane.lane("deliveries.a") is lane and plane.lane("deliveries.b") is not lane
        request = invocation_pb2.InvokeFunctionRequest(target=fn.name, event=EVENT)
        result = await lane.invoke(request)
        assert result.outcome == invocation_pb2.OUTCOME_OK and lane.streams_opened == 1
        assert list(result.handlers) == ["onIdentify", "onTrack"]
        assert result.version == f"{fn.name}/versions/1"
        await eventually(lambda: not lane.open, within=10, what="the idle stream to close")
        again = await lane.invoke(invocation_pb2.InvokeFunctionRequest(target=fn.name, event=EVENT))
        assert again.outcome == invocation_pb2.OUTCOME_OK and lane.streams_opened == 2
        assert not plane.lane("deliveries.b").open  # never used: no stream
    finally:
        await plane.close()


async def test_an_invocation_without_an_answer_in_time_fails_unavailable(
    control: ControlService, tmp_path: Path
) -> None:
    token = (tmp_path / "admin.token").read_text().strip()
    code = "async function onTrack(event) { await new Promise((r) => setTimeout(r, 3000)) }"
    async with FnboxClient(control.address, token) as client:
        fn = await pipeline.deployed(client, "slow", resources_pb2.FUNCTION_TYPE_DESTINATION, code)
    plane = ControlPlane(control.address, token, invoke_timeout=0.5)
    try:
        lane = plane.lane("deliveries.slow")
        request = invocation_pb2.InvokeFunctionRequest(target=fn.name, event=EVENT)
        with pytest.raises(Unavailable, match="in time"):
            await lane.invoke(request)
        assert not lane._waiting  # the caller that gave up is forgotten
    finally:
        await plane.close()
