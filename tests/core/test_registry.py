from __future__ import annotations

import pytest

from rigserve.registry import Registry


def test_registry_registers_by_decorator_and_looks_up_like_a_mapping() -> None:
    reg: Registry[str, int] = Registry("codec")

    @reg.register("png")
    def png() -> int:
        return 1

    reg.add("bin", 2)  # type: ignore[arg-type]
    assert reg["png"] is png
    assert list(reg) == ["png", "bin"]
    assert "bin" in reg
    assert "mat" not in reg
    assert len(reg) == 2


def test_registering_a_key_twice_is_refused() -> None:
    reg: Registry[str, int] = Registry("encoder")
    reg.add("depth", 1)
    with pytest.raises(ValueError, match="encoder 'depth' is already registered"):
        reg.add("depth", 2)


def test_unknown_key_names_what_is_registered_with_the_registrys_own_error() -> None:
    class LookupFailedError(Exception):
        pass

    reg: Registry[str, int] = Registry("strategy", error=LookupFailedError)
    reg.add("pta", 1)
    reg.add("karmma", 2)
    with pytest.raises(LookupFailedError, match="unknown strategy 'x'; registered: karmma, pta"):
        reg["x"]
    assert reg.get("x") is None  # Mapping.get still answers None, not the error
