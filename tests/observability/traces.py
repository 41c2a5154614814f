"""Looking at finished spans: one trace as a tree, parents by name."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan


class Trace:
    """The spans of one trace id."""

    def __init__(self, spans: Sequence[ReadableSpan], trace_id: int) -> None:
        self.spans = [s for s in spans if s.context is not None and s.context.trace_id == trace_id]
        self._by_id = {s.context.span_id: s for s in self.spans if s.context is not None}

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans if s.name == name]

    def one(self, name: str, parent: ReadableSpan | None = None) -> ReadableSpan:
        found = [s for s in self.named(name) if parent is None or self.parent(s) is parent]
        assert len(found) == 1, f"{len(found)} spans {name!r} under {parent and parent.name}: " + (
            self.describe()
        )
        return found[0]

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        if span.parent is None:
            return None
        return self._by_id.get(span.parent.span_id)

    def children(self, span: ReadableSpan) -> list[ReadableSpan]:
        return [s for s in self.spans if self.parent(s) is span]

    def describe(self) -> str:
        lines: list[str] = []

        def walk(span: ReadableSpan, depth: int) -> None:
            lines.append("  " * depth + f"{span.name} {dict(span.attributes or {})}")
            for child in sorted(self.children(span), key=lambda s: s.start_time or 0):
                walk(child, depth + 1)

        for root in self.spans:
            if self.parent(root) is None:
                walk(root, 0)
        return "\n".join(lines)
