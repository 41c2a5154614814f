"""How an invocation result is shown: the contract's JSON object, or readable text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fnbox.cli.render import Output, decode_json, pretty_json
from fnbox.functions.v1 import invocation_pb2

__all__ = ["outcome_name", "print_result", "result_json"]


def outcome_name(outcome: invocation_pb2.Outcome) -> str:
    """``OUTCOME_OK`` → ``OK``."""
    return invocation_pb2.Outcome.Name(outcome).removeprefix("OUTCOME_")


def result_json(result: invocation_pb2.InvocationResult) -> dict[str, Any]:
    """The CLI contract's object; absent or empty fields are left out."""
    data: dict[str, Any] = {"outcome": outcome_name(result.outcome)}
    if result.events:
        data["events"] = [decode_json(event) for event in result.events]
    if result.objects:
        data["objects"] = [decode_json(item) for item in result.objects]
    if result.HasField("returned"):
        data["returned"] = decode_json(result.returned)
    if result.batch_statuses:
        data["batchStatuses"] = [_event_result_json(status) for status in result.batch_statuses]
    if result.error.name or result.error.message or result.error.stack:
        data["error"] = {
            key: value
            for key, value in (
                ("name", result.error.name),
                ("message", result.error.message),
                ("stack", result.error.stack),
            )
            if value
        }
    if result.logs:
        data["logs"] = list(result.logs)
    if result.logs_truncated:
        data["logsTruncated"] = True
    if result.requests:
        data["requests"] = [_request_json(request) for request in result.requests]
    data["durationMs"] = round(result.duration_ms, 3)
    if result.version:
        data["version"] = result.version
    return data


def _event_result_json(status: invocation_pb2.EventResult) -> dict[str, Any]:
    data: dict[str, Any] = {"outcome": outcome_name(status.outcome), "status": status.status}
    if status.error_message:
        data["errorMessage"] = status.error_message
    if status.HasField("returned"):
        data["returned"] = decode_json(status.returned)
    return data


def _request_json(request: invocation_pb2.OutboundRequest) -> dict[str, Any]:
    data: dict[str, Any] = {
        "method": request.method,
        "url": request.url,
        "status": request.status,
        "durationMs": round(request.duration_ms, 3),
    }
    if request.error:
        data["error"] = request.error
    return data


def print_result(out: Output, result: invocation_pb2.InvocationResult) -> None:
    """The outcome first, then what the function produced, its error, logs and requests."""
    if out.json:
        out.emit_json(result_json(result))
        return
    out.line(outcome_name(result.outcome))
    _print_payloads(out, "events", list(result.events))
    _print_payloads(out, "objects", list(result.objects))
    if result.HasField("returned"):
        out.line("returned:")
        _print_indented(out, pretty_json(result.returned))
    if result.batch_statuses:
        _print_batch(out, result)
    if result.error.name or result.error.message:
        _print_error(out, result.error)
    if result.logs:
        out.line("logs:" + (" (truncated)" if result.logs_truncated else ""))
        for entry in result.logs:
            _print_indented(out, entry)
    if result.requests:
        out.line("requests:")
        rows = [
            (
                r.method,
                r.url,
                str(r.status) if r.status else "-",
                f"{r.duration_ms:.0f} ms",
                r.error,
            )
            for r in result.requests
        ]
        _print_rows(out, rows)
    out.line(f"duration: {result.duration_ms:.1f} ms")


def _print_payloads(out: Output, title: str, payloads: list[bytes]) -> None:
    if not payloads:
        return
    out.line(f"{title} ({len(payloads)}):")
    for payload in payloads:
        _print_indented(out, pretty_json(payload))


def _print_batch(out: Output, result: invocation_pb2.InvocationResult) -> None:
    out.line("batch:")
    rows: list[tuple[str, ...]] = [("#", "OUTCOME", "STATUS", "ERROR")]
    rows += [
        (str(i), outcome_name(s.outcome), str(s.status), s.error_message)
        for i, s in enumerate(result.batch_statuses)
    ]
    _print_rows(out, rows)
    # An insert function's onBatch: the events it passes on, by their place in the batch.
    returned = [
        (i, s.returned) for i, s in enumerate(result.batch_statuses) if s.HasField("returned")
    ]
    if returned:
        out.line(f"returned ({len(returned)}):")
        for i, payload in returned:
            out.line(f"  #{i}")
            _print_indented(
                out, "\n".join(f"  {line}" for line in pretty_json(payload).split("\n"))
            )


def _print_error(out: Output, error: invocation_pb2.UserError) -> None:
    headline = f"{error.name}: {error.message}" if error.name else error.message
    out.line(f"error: {headline}")
    stack = error.stack.splitlines()
    if stack and stack[0].strip() == headline.strip():
        stack = stack[1:]  # V8 stacks start with the headline already shown
    for frame in stack:
        out.line(f"  {frame.strip()}")


def _print_rows(out: Output, rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        out.line(("  " + "  ".join(cells)).rstrip())


def _print_indented(out: Output, text: str) -> None:
    for line in text.splitlines() or [""]:
        out.line(f"  {line}")
