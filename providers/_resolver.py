"""The resolver behind `HttpPool.public_session()`: connects only to addresses `is_public_address` accepts.

A module of its own because it subclasses aiohttp's resolver: `providers._addresses` (the address rules) is imported
at start, aiohttp only when a worker first fetches a URL a client named (issue 17, RSS; upstream calls go through
`providers._wire`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from providers._addresses import NonPublicAddress, is_public_address


class PublicOnlyResolver(AbstractResolver):
    """Resolves through `inner` and refuses a name if any of its addresses fails `allowed`.

    The connector connects to exactly the addresses returned here: the check and the connection use one answer.
    """

    def __init__(
        self, inner: AbstractResolver | None = None, allowed: Callable[[str], bool] = is_public_address
    ) -> None:
        self._inner = inner
        self._allowed = allowed

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = DefaultResolver()
        results = await self._inner.resolve(host, port, family)
        for result in results:
            if not self._allowed(result["host"]):
                raise NonPublicAddress(host, result["host"])
        return results

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()
