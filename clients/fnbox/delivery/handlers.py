"""Which function versions define ``onBatch``, as their workers report it.

A worker evaluates a version's top level once, when it loads it, and then knows exactly which
handlers that version defines; every invocation result carries them (``handlers``) with the
version that ran. So the delivery learns per version, from the version that actually runs,
whether its events go to ``onBatch`` (and are worth collecting into batches) or to the
single-event handlers. Until it knows, it sends events one at a time with the batch input,
which is right for both kinds of code: without ``onBatch`` the runtime passes the event to its
single-event handler.
"""

from __future__ import annotations

from fnbox.functions.v1 import invocation_pb2

__all__ = ["VersionHandlers"]

ON_BATCH = "onBatch"


class VersionHandlers:
    """``on_batch(version)``: True/False once a result of ``version`` was seen, else None."""

    def __init__(self, keep: int = 32) -> None:
        self._keep = keep
        self._on_batch: dict[str, bool] = {}

    def learn(self, result: invocation_pb2.InvocationResult) -> None:
        """Record what ``result`` says about its version (timeouts and faults say nothing)."""
        if not result.version or not result.handlers:
            return
        self._on_batch.pop(result.version, None)
        self._on_batch[result.version] = ON_BATCH in result.handlers
        while len(self._on_batch) > self._keep:  # versions replaced long ago
            del self._on_batch[next(iter(self._on_batch))]

    def on_batch(self, version: str) -> bool | None:
        """Whether ``version`` (a version resource name) defines onBatch; None: not known."""
        return self._on_batch.get(version) if version else None
