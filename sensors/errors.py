"""The sensors package's exceptions: one small hierarchy, messages in the user's words.

Every message names what was wrong, what was expected and what was found, so a caller
(the server's exception handlers, the CLI) can pass it on unchanged.
"""

from __future__ import annotations

from pathlib import Path

#: The reasons a frame can be invalid (docs/contracts.md); the server counts drops by them.
INVALID_REASONS: tuple[str, ...] = ("shape", "dtype", "nonfinite", "range", "flat", "empty")


class SensorError(ValueError):
    """Base of every sensors error: bad input, never a bug in the caller's environment."""


class FormatError(SensorError):
    """A file (or uploaded file bytes) is truncated, unreadable or holds the wrong thing."""

    def __init__(self, path: str | Path, expected: str, found: str) -> None:
        self.path = str(path)
        self.expected = expected
        self.found = found
        super().__init__(f"{self.path}: expected {expected}, found {found}")

    def __reduce__(self) -> tuple[type[FormatError], tuple[str, str, str]]:
        return (type(self), (self.path, self.expected, self.found))


class InvalidFrame(SensorError):  # noqa: N818 - name pinned in docs/contracts.md
    """A decoded frame fails a validity check; ``reason`` is one of :data:`INVALID_REASONS`."""

    def __init__(self, modality: str, reason: str, message: str) -> None:
        if reason not in INVALID_REASONS:
            raise ValueError(f"invalid-frame reason {reason!r} is not one of {INVALID_REASONS}")
        self.modality = modality
        self.reason = reason
        super().__init__(message)

    def __reduce__(self) -> tuple[type[InvalidFrame], tuple[str, str, str]]:
        return (type(self), (self.modality, self.reason, str(self)))


class UnknownModality(SensorError, KeyError):  # noqa: N818 - name pinned in contracts
    """A modality name that is not in the registry (also a KeyError, as a failed lookup)."""

    def __init__(self, name: str, known: tuple[str, ...] | list[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(f"unknown modality {name!r}; known modalities: {', '.join(self.known)}")

    def __str__(self) -> str:
        # KeyError would repr() the message; keep it readable.
        return str(self.args[0])

    def __reduce__(self) -> tuple[type[UnknownModality], tuple[str, tuple[str, ...]]]:
        return (type(self), (self.name, self.known))
