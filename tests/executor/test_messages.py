"""Decoding a worker's ``result`` frame (messages.decode_result): the batch encodings."""

from __future__ import annotations

from typing import Any

import pytest
from fnbox.executor.codec import Frame
from fnbox.executor.errors import ProtocolError
from fnbox.executor.messages import MAX_BATCH_ENTRIES, decode_result
from fnbox.executor.types import Outcome


def result_frame(segments: list[bytes], **fields: Any) -> Frame:
    header = {"t": "result", "id": 1, "outcome": "OK", "logs": [], "requests": []} | fields
    return Frame(header=header, segments=segments)


def test_batch_runs_expand_in_order_with_returned_events_after_the_emitted_ones() -> None:
    runs = [
        [2, "OK", 200, "", False],
        [1, "RETRY", 503, "later", False],
        [2, "OK", 200, "", True],
        [1, "DROP", 400, "filtered at insert function", False],
    ]
    frame = result_frame([b'{"e":1}', b'{"r":1}', b'{"r":2}'], n_events=1, batch_runs=runs)
    result = decode_result(frame, worker_pid=7)
    assert result.events == [b'{"e":1}']
    got = [(b.outcome, b.status, b.error_message, b.returned) for b in result.batch]
    assert got == [
        (Outcome.OK, 200, "", None),
        (Outcome.OK, 200, "", None),
        (Outcome.RETRY, 503, "later", None),
        (Outcome.OK, 200, "", b'{"r":1}'),
        (Outcome.OK, 200, "", b'{"r":2}'),
        (Outcome.DROP, 400, "filtered at insert function", None),
    ]


def test_the_per_entry_batch_list_is_still_understood() -> None:
    entries = [
        {"outcome": "OK", "status": 200, "error_message": "", "has_returned": True},
        {"outcome": "ERROR", "status": 400, "error_message": "bad", "has_returned": False},
    ]
    result = decode_result(result_frame([b"{}"], batch=entries), worker_pid=7)
    got = [(b.outcome, b.status, b.error_message, b.returned) for b in result.batch]
    assert got == [(Outcome.OK, 200, "", b"{}"), (Outcome.ERROR, 400, "bad", None)]


@pytest.mark.parametrize(
    ("runs", "segments"),
    [
        ([[-1, "OK", 200, "", False]], []),
        ([[MAX_BATCH_ENTRIES + 1, "OK", 200, "", False]], []),
        ([[2, "OK", 200, "", True]], [b"{}"]),  # announces two returned events, carries one
        ([[1, "OK", 200, "", False]], [b"{}"]),  # a segment nothing announces
        ([[1, "MAYBE", 200, "", False]], []),
        ([[1, "OK", 200]], []),
    ],
)
def test_malformed_batch_runs_are_protocol_errors(runs: list[Any], segments: list[bytes]) -> None:
    with pytest.raises(ProtocolError):
        decode_result(result_frame(segments, batch_runs=runs), worker_pid=7)


def test_a_run_names_the_error_class_of_its_entries_and_older_five_element_runs_name_none() -> None:
    runs = [[1, "ERROR", 400, "fetch failed", False, "TypeError"], [1, "ERROR", 400, "bad", False]]
    result = decode_result(result_frame([], batch_runs=runs), worker_pid=7)
    got = [(b.outcome, b.error_message, b.error_name) for b in result.batch]
    assert got == [(Outcome.ERROR, "fetch failed", "TypeError"), (Outcome.ERROR, "bad", "")]
