"""The bus's exceptions: one root, so callers catch ``BusError`` and nothing backend-specific."""

from __future__ import annotations

__all__ = ["BusClosed", "BusError", "BusUnavailable", "InvalidName"]


class BusError(Exception):
    """Root of every error the bus raises."""


class BusUnavailable(BusError):
    """The backend cannot be reached or did not answer in time; retrying later may work.
    A publish that raised this may or may not have been stored (republish with its dedup_id)."""


class BusClosed(BusError):
    """The bus was used before :meth:`Bus.start` or after :meth:`Bus.close`."""


class InvalidName(BusError, ValueError):
    """A topic, group or namespace that is not made of the allowed characters."""
