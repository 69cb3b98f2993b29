"""Inflating gzip and deflate bodies in bounded steps.

A few hundred kilobytes of gzip can inflate to gigabytes: inflated all at once as they arrive, one read of such a
body would hold hundreds of megabytes before the reader could take any. So an `Inflater` makes at most as much as
the reader has room for and keeps the compressed rest (`pending`); the connection stops reading while there is
some, and the reader inflates more as it takes what it holds (aiohttp bounds its inflation the same way).
"""

from __future__ import annotations

import zlib

from providers._wire.errors import MalformedResponse

MAX_MEMBERS = 1024
"""Members inflated in one step: gzip allows a body of several (`cat a.gz b.gz`); aiohttp stops at as many."""

WINDOW = 16 * 1024
"""Compressed bytes handed to zlib at a time: a member's decoder copies all the input after the member's end into
its `unused_data`, so a body of many small members given whole would be copied once per member."""


class Inflater:
    """The decoder of one body's `gzip` or `deflate` content, and the compressed bytes it has not inflated yet."""

    __slots__ = ("encoding", "wbits", "decoder", "pending")

    def __init__(self, encoding: str, wbits: int) -> None:
        self.encoding = encoding
        self.wbits = wbits
        self.decoder = zlib.decompressobj(wbits)
        self.pending: list[bytes] = []

    @classmethod
    def of(cls, encoding: str, first: bytes) -> Inflater | None:
        """An inflater for `encoding` (lower case), None for one the client did not ask for; `first` is the body's
        first bytes: RFC 9110's deflate is zlib-wrapped, but some servers send it raw (sniffed as aiohttp does)."""
        if encoding in ("gzip", "x-gzip"):
            return cls(encoding, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            wrapped = not first or first[0] & 0x0F == 8  # a zlib header's method: one byte tells, two may not have come
            return cls(encoding, zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        return None

    def inflate(self, data: bytes, room: int | None) -> bytes:
        """What `pending` and then `data` inflate to, at most `room` bytes of it (None: all); the compressed rest
        stays pending.

        Raises:
            MalformedResponse: the bytes do not inflate, or the body has more than `MAX_MEMBERS` members here.
        """
        pending = self.pending
        if data:
            pending.append(data)
        if not pending or (room is not None and room <= 0):
            return b""
        source = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        out: list[bytes] = []
        made = pos = members = 0
        decoder = self.decoder
        while pos < len(source) and (room is None or made < room):
            if decoder.eof:  # the member ended and more follows: the next member, with a decoder of its own
                members += 1
                if members > MAX_MEMBERS:
                    raise MalformedResponse(f"the {self.encoding} body has more than {MAX_MEMBERS} members")
                decoder = self.decoder = zlib.decompressobj(self.wbits)
            end = min(pos + WINDOW, len(source))
            try:
                piece = decoder.decompress(source[pos:end], 0 if room is None else room - made)
            except zlib.error as exc:
                raise MalformedResponse(f"the body does not decode as {self.encoding}: {exc}") from exc
            pos = end - len(decoder.unused_data if decoder.eof else decoder.unconsumed_tail)
            if piece:
                out.append(piece)
                made += len(piece)
        if pos < len(source):
            pending.append(source[pos:])
        return out[0] if len(out) == 1 else b"".join(out)

    def flush(self) -> bytes:
        """What the decoder still holds once the body has ended and nothing is pending."""
        return self.decoder.flush()
