"""invoke_stream and invoke_many over a real grpc.aio stream (InvokeStreamBatch, and
InvokeStream with ``batched=False``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from fnbox.client import FnboxClient, InvokeOutcome, NotFound, invoke_request
from fnbox.client.pipeline import size_bounded
from fnbox.functions.v1 import invocation_pb2

from tests.client.conftest import Scripted


def events(target: str, count: int) -> list[invocation_pb2.InvokeFunctionRequest]:
    return [invoke_request(target, event=b'{"n":%d}' % i, request_id=f"r{i}") for i in range(count)]


@pytest.fixture(params=[True, False], ids=["batched", "unbatched"])
def batched(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def collect(outcomes: AsyncIterator[InvokeOutcome]) -> list[InvokeOutcome]:
    return [outcome async for outcome in outcomes]


async def test_invoke_many_bounds_in_flight_and_matches_answers(
    client: FnboxClient, batched: bool
) -> None:
    consumed = 0
    taken_after: list[int] = []  # outcomes the caller held when request i was taken

    def produce() -> Iterator[invocation_pb2.InvokeFunctionRequest]:
        for request in events("ok/group-3", 12):
            taken_after.append(consumed)
            yield request

    outcomes = []
    async for outcome in client.invoke_many(produce(), concurrency=3, batched=batched):
        consumed += 1
        outcomes.append(outcome)
    # Request i needs a free slot for requests i-3.. before it: at least i-3 answers
    # (one of which may still be on its way to the caller). Sending ahead would break it.
    assert all(taken >= i - 4 for i, taken in enumerate(taken_after)), taken_after
    assert taken_after[3] == 0  # the 4th is taken (not sent) before any answer
    assert len(outcomes) == 12
    for outcome in outcomes:
        assert outcome.error is None and outcome.result is not None
        # The scripted server echoes the event: each answer went to its own request.
        assert outcome.result.returned == outcome.request.event
    # Answered last-first within each group of 3, so not in input order.
    assert [o.request.request_id for o in outcomes[:3]] == ["r2", "r1", "r0"]


async def test_invoke_many_retries_retryable_statuses_with_the_same_id(
    client: FnboxClient, batched: bool, scripted: Scripted
) -> None:
    outcomes = await collect(
        client.invoke_many(events("flaky-2", 5), concurrency=2, batched=batched)
    )
    assert all(o.result is not None for o in outcomes)
    assert sorted(o.request.request_id for o in outcomes) == [f"r{i}" for i in range(5)]
    assert all(scripted.servicer.calls[f"flaky-2/r{i}"] == 3 for i in range(5))


async def test_invoke_many_reports_final_errors_per_request(
    client: FnboxClient, batched: bool
) -> None:
    requests = [*events("missing", 2), *events("ok", 2)]
    requests[2].request_id, requests[3].request_id = "a", "b"
    outcomes = await collect(client.invoke_many(requests, concurrency=8, batched=batched))
    errors = {o.request.request_id: o.error for o in outcomes}
    assert isinstance(errors["r0"], NotFound) and isinstance(errors["r1"], NotFound)
    assert errors["a"] is None and errors["b"] is None


async def test_invoke_many_assigns_missing_request_ids(client: FnboxClient, batched: bool) -> None:
    requests = [invocation_pb2.InvokeFunctionRequest(target="ok", event=b"{}") for _ in range(3)]
    outcomes = await collect(client.invoke_many(requests, batched=batched))
    assert len({o.request.request_id for o in outcomes}) == 3
    assert all(o.request.request_id for o in outcomes)


async def test_invoke_many_accepts_async_iterables_and_empty_input(
    client: FnboxClient, batched: bool
) -> None:
    async def produce() -> AsyncIterator[invocation_pb2.InvokeFunctionRequest]:
        for request in events("ok", 4):
            yield request

    assert len(await collect(client.invoke_many(produce(), concurrency=2, batched=batched))) == 4
    assert await collect(client.invoke_many([], batched=batched)) == []


async def test_invoke_many_surfaces_errors_of_the_input(client: FnboxClient, batched: bool) -> None:
    def broken() -> Iterator[invocation_pb2.InvokeFunctionRequest]:
        yield from events("ok", 2)
        raise RuntimeError("input broke")

    with pytest.raises(RuntimeError, match="input broke"):
        await collect(client.invoke_many(broken(), concurrency=1, batched=batched))


async def test_invoke_many_rejects_duplicate_request_ids(
    client: FnboxClient, batched: bool
) -> None:
    requests = [invoke_request("ok/group-2", event=b"{}", request_id="same") for _ in range(2)]
    with pytest.raises(ValueError, match="duplicate"):
        await collect(client.invoke_many(requests, concurrency=2, batched=batched))


async def test_invoke_stream_yields_raw_responses(client: FnboxClient) -> None:
    async def produce() -> AsyncIterator[invocation_pb2.InvokeFunctionRequest]:
        for request in [*events("ok", 2), *events("missing", 1)]:
            yield request

    responses = [r async for r in client.invoke_stream(produce())]
    kinds = sorted(r.WhichOneof("response") or "" for r in responses)
    assert kinds == ["result", "result", "status"]


async def test_invoke_many_sends_the_requests_ready_together_in_one_message(
    client: FnboxClient, scripted: Scripted
) -> None:
    outcomes = await collect(client.invoke_many(events("ok/group-4", 8), concurrency=4))
    assert sorted(o.request.request_id for o in outcomes) == [f"r{i}" for i in range(8)]
    # The first four are taken before anything is written; the next four as answers free
    # slots (the server answers each group of four in one message).
    assert scripted.servicer.batch_sizes == [4, 4]


def test_size_bounded_groups_cut_at_about_the_limit_and_keep_every_message() -> None:
    limit = 1024 * 1024
    small = events("ok", 20)
    assert [len(g) for g in size_bounded(small, limit)] == [20]
    big = [
        invoke_request("ok", event=b'{"pad":"%s"}' % (b"x" * 300_000), request_id=f"b{i}")
        for i in range(7)
    ]
    webhooks = [
        invocation_pb2.InvokeFunctionRequest(
            target="ok",
            request=invocation_pb2.WebhookRequest(body=b"y" * 400_000, url="https://x/"),
            request_id=f"w{i}",
        )
        for i in range(3)
    ]
    huge = [invoke_request("ok", event=b'"%s"' % (b"z" * (limit + 10)), request_id="h")]
    for requests in (big, webhooks, [*small, *big], [*small, *huge, *small]):
        groups = list(size_bounded(requests, limit))
        assert len(groups) > 1
        sizes = [invocation_pb2.InvokeStreamBatchRequest(requests=g).ByteSize() for g in groups]
        assert all(size <= limit or len(g) == 1 for size, g in zip(sizes, groups, strict=True))
        sent = [r.request_id for g in groups for r in g]
        assert sent == [r.request_id for r in requests]
    assert list(size_bounded([], limit)) == []
