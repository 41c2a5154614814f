"""Walking a paged List RPC (AIP-158): ask for pages until one has no ``next_page_token``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

__all__ = ["every_item"]

T = TypeVar("T")
PageT = TypeVar("PageT", bound="_Page")


class _Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


async def every_item(
    fetch: Callable[[str], Awaitable[PageT]], items: Callable[[PageT], Iterable[T]]
) -> AsyncIterator[T]:
    """The ``items`` of every page ``fetch(page_token)`` returns, starting from the first page
    (token ``""``); pages are fetched only as the caller asks for more."""
    page_token = ""
    while True:
        page = await fetch(page_token)
        for item in items(page):
            yield item
        page_token = page.next_page_token
        if not page_token:
            return
