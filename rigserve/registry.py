"""One registry for every pluggable part: encoders, strategies, codecs, renderers,
engine back ends, benchmark clients.

A registry maps a key (usually a name) to an implementation. Registering a key twice is
a programming error; looking up an unknown key is usually a user's error, so the message
lists what is registered. Each registry names the exception its users expect (a server
lookup raises the server's own error, a CLI choice a ValueError).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Registry(Mapping[K, V], Generic[K, V]):
    """A read-only mapping plus ``register``/``add``; lookups name what is registered."""

    def __init__(self, kind: str, *, error: type[Exception] = KeyError) -> None:
        self.kind = kind
        self._error = error
        self._items: dict[K, V] = {}

    def add(self, key: K, value: V) -> V:
        if key in self._items:
            raise ValueError(f"{self.kind} {key!r} is already registered")
        self._items[key] = value
        return value

    def register(self, key: K) -> Callable[[V], V]:
        """Decorator form of :meth:`add`."""

        def deco(value: V) -> V:
            return self.add(key, value)

        return deco

    def __getitem__(self, key: K) -> V:
        try:
            return self._items[key]
        except KeyError:
            raise self._error(f"unknown {self.kind} {key!r}; registered: "
                              f"{', '.join(map(str, sorted(self._items, key=str)))}") from None

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K, default: V | None = None) -> V | None:  # type: ignore[override]
        return self._items.get(key, default)

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._items)!r})"
