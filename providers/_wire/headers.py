"""An answer's header fields (`providers._wire.Response.headers`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeVar, overload

_T = TypeVar("_T")


class Headers(Mapping[str, str]):
    """An answer's header fields by lower-case name; lookups take any case. Repeated fields are joined with ", ",
    which is wrong for Set-Cookie alone (its values hold commas, RFC 6265 section 3): those are kept one by one in
    `cookies` too, for a client with a cookie jar (`hub.mcp.wire_http`; a sticky load balancer sets two)."""

    __slots__ = ("fields", "cookies")

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.cookies: list[str] = []

    def __getitem__(self, key: str) -> str:
        return self.fields[key.lower()]

    @overload
    def get(self, key: str, /) -> str | None: ...
    @overload
    def get(self, key: str, default: str, /) -> str: ...
    @overload
    def get(self, key: str, default: _T, /) -> str | _T: ...
    def get(self, key: str, default: object = None, /) -> object:
        return self.fields.get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self.fields

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def add(self, name: bytes, value: bytes) -> None:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        fields = self.fields
        fields[key] = f"{fields[key]}, {text}" if key in fields else text
        if key == "set-cookie":
            self.cookies.append(text)

    def clear(self) -> None:
        """Forget an interim answer's fields (the real answer's follow)."""
        self.fields.clear()
        self.cookies.clear()
