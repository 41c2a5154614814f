"""Output formatting: the invocation JSON contract, human text, tables and resources."""

from __future__ import annotations

import io

from fnbox.cli.render import Output, message_json
from fnbox.cli.results import print_result, result_json
from fnbox.functions.v1 import invocation_pb2, resources_pb2


def full_result() -> invocation_pb2.InvocationResult:
    return invocation_pb2.InvocationResult(
        outcome=invocation_pb2.OUTCOME_ERROR,
        events=[b'{"type":"track","event":"Signed Up"}'],
        objects=[b'{"id":"o1"}'],
        returned=b'{"type":"identify"}',
        batch_statuses=[
            invocation_pb2.EventResult(outcome=invocation_pb2.OUTCOME_OK, status=200),
            invocation_pb2.EventResult(
                outcome=invocation_pb2.OUTCOME_RETRY, status=500, error_message="later"
            ),
        ],
        error=invocation_pb2.UserError(
            name="TypeError",
            message="x is not a function",
            stack="TypeError: x is not a function\n    at onTrack (fn.js:3:7)",
        ),
        logs=["hello", "world"],
        requests=[
            invocation_pb2.OutboundRequest(
                method="POST", url="https://api.example.com/v1", status=201, duration_ms=12.4
            ),
            invocation_pb2.OutboundRequest(
                method="GET", url="https://x", status=0, duration_ms=3, error="refused"
            ),
        ],
        duration_ms=25.04,
    )


def render(result: invocation_pb2.InvocationResult, mode: str = "table") -> str:
    stream = io.StringIO()
    print_result(Output("json" if mode == "json" else "table", stream), result)
    return stream.getvalue()


def test_result_json_follows_the_contract() -> None:
    data = result_json(full_result())
    assert data["outcome"] == "ERROR"
    assert data["events"] == [{"type": "track", "event": "Signed Up"}]
    assert data["objects"] == [{"id": "o1"}]
    assert data["returned"] == {"type": "identify"}
    assert data["batchStatuses"] == [
        {"outcome": "OK", "status": 200},
        {"outcome": "RETRY", "status": 500, "errorMessage": "later"},
    ]
    assert data["error"]["name"] == "TypeError"
    assert data["error"]["stack"].startswith("TypeError")
    assert data["logs"] == ["hello", "world"]
    assert data["requests"][0] == {
        "method": "POST",
        "url": "https://api.example.com/v1",
        "status": 201,
        "durationMs": 12.4,
    }
    assert data["durationMs"] == 25.04


def test_result_json_omits_absent_fields() -> None:
    result = invocation_pb2.InvocationResult(outcome=invocation_pb2.OUTCOME_DROP, duration_ms=1)
    assert result_json(result) == {"outcome": "DROP", "durationMs": 1}
    # An insert function that returned an empty object still shows it.
    result.returned = b"{}"
    assert result_json(result)["returned"] == {}


def test_human_output_reads_top_down() -> None:
    lines = render(full_result()).splitlines()
    assert lines[0] == "ERROR"
    assert lines[1:5] == ["events (1):", "  {", '    "type": "track",', '    "event": "Signed Up"']
    text = "\n".join(lines)
    assert "error: TypeError: x is not a function\n  at onTrack (fn.js:3:7)\n" in text
    assert text.count("x is not a function") == 1  # the stack's headline is not repeated
    assert "logs:\n  hello\n  world\n" in text
    assert "  POST  https://api.example.com/v1  201  12 ms" in text
    assert "  GET   https://x                   -    3 ms   refused" in text
    assert "  1  RETRY    500     later" in text
    assert lines[-1] == "duration: 25.0 ms"
    assert "outcome:" not in text and "\\n" not in text  # no protobuf dump


def test_an_insert_batch_shows_the_events_it_passes_on() -> None:
    result = invocation_pb2.InvocationResult(
        outcome=invocation_pb2.OUTCOME_OK,
        batch_statuses=[
            invocation_pb2.EventResult(outcome=invocation_pb2.OUTCOME_DROP, status=400),
            invocation_pb2.EventResult(
                outcome=invocation_pb2.OUTCOME_OK, status=200, returned=b'{"event":"kept"}'
            ),
        ],
    )
    text = render(result)
    assert "  0  DROP     400\n  1  OK       200\n" in text
    assert 'returned (1):\n  #1\n    {\n      "event": "kept"\n    }\n' in text


def test_json_mode_prints_exactly_one_object() -> None:
    import json

    printed = render(full_result(), "json")
    assert json.loads(printed)["outcome"] == "ERROR"


def test_resource_json_has_camel_case_and_settings_as_an_object() -> None:
    instance = resources_pb2.Instance(
        name="workspaces/ws_a/instances/in_b",
        display_name="Prod",
        settings=b'{"apiKey":"k","tags":["a"]}',
        function_type=resources_pb2.FUNCTION_TYPE_DESTINATION,
    )
    data = message_json(instance)
    assert data["displayName"] == "Prod"
    assert data["settings"] == {"apiKey": "k", "tags": ["a"]}
    assert data["functionType"] == "FUNCTION_TYPE_DESTINATION"
    # Every field without presence is shown, defaults included.
    assert (data["webhookUrl"], data["sources"]) == ("", [])


def test_table_and_fields_align() -> None:
    stream = io.StringIO()
    out = Output("table", stream)
    out.table(("ID", "NAME", "TYPE"), [("fn_1", "a", "source"), ("fn_22", "longer", "x")])
    out.fields([("id", "fn_1"), ("display name", "a"), ("code", "line1\nline2")])
    assert stream.getvalue().splitlines() == [
        "ID     NAME    TYPE",
        "fn_1   a       source",
        "fn_22  longer  x",
        "id:           fn_1",
        "display name: a",
        "code:         line1",
        "              line2",
    ]
