"""The spans of a function's outbound requests, made after the fact from its result.

The Node runtime records each ``fetch`` (method, url, status, start offset, duration); these
become CLIENT spans under the ``executor.invoke`` span with their real start and end times.
The worker's clock is not ours: the invocation's start is placed at "result received minus its
duration" (never before the executor span began), and offsets are counted from there.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit, urlunsplit

from fnbox.executor.types import InvocationResult, OutboundRequest
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

__all__ = ["record_requests"]

tracer = trace.get_tracer("fnbox.executor")


def record_requests(span: Span, result: InvocationResult) -> None:
    """One child span of ``span`` per outbound request in ``result``."""
    if not result.requests or not span.is_recording():
        return
    now = time.time_ns()
    began = getattr(span, "start_time", None) or now
    invocation_start = max(began, now - int(result.duration_ms * 1e6))
    parent = trace.set_span_in_context(span)
    for request in result.requests:
        start = min(invocation_start + int(request.start_ms * 1e6), now)
        end = min(start + int(request.duration_ms * 1e6), now)
        child = tracer.start_span(
            f"fetch {request.method.upper()}",
            context=parent,
            kind=SpanKind.CLIENT,
            start_time=start,
            attributes=_attributes(request),
        )
        child.end(end_time=max(end, start))


def _attributes(request: OutboundRequest) -> dict[str, str | int | float]:
    parts = urlsplit(request.url)
    attributes: dict[str, str | int | float] = {
        "http.request.method": request.method.upper(),
        # Without the query and credentials: they often carry API keys.
        "url.full": urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", "")),
        "server.address": parts.hostname or "",
        "fnbox.fetch.duration_ms": request.duration_ms,
    }
    try:
        if parts.port is not None:
            attributes["server.port"] = parts.port
            attributes["url.full"] = urlunsplit(
                (parts.scheme, f"{parts.hostname}:{parts.port}", parts.path, "", "")
            )
    except ValueError:
        pass
    if request.status:
        attributes["http.response.status_code"] = request.status
    if request.error:
        # The function's outcome decides what a failed request means; not a platform fault.
        attributes["error.type"] = _error_type(request.error)
    return attributes


_CODE = re.compile(r"[A-Z][A-Z0-9_]{2,}")


def _error_type(error: str) -> str:
    """The error's code (``EGRESS_DENIED``, ``ECONNREFUSED``) when it names one, else its
    first part (``fetch failed``): low cardinality, and no URL that could hold a key."""
    parts = [part.strip() for part in error.split(":")]
    return next((part for part in parts if _CODE.fullmatch(part)), parts[0])[:100]
