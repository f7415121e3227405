"""What every CLI misuse test checks: one line on stderr, the command's prefix, no traceback."""

from __future__ import annotations


def assert_one_line_error(err: str, command: str, message: str) -> None:
    """``err`` is exactly one line ``rigserve COMMAND: ...`` that contains ``message``."""
    assert "Traceback" not in err, err
    assert err.startswith(f"rigserve {command}: "), err
    assert err.count("\n") == 1, err
    assert message in err, err
