"""Typed getters for the resources the app factory keeps on ``app.state`` (style.md §7)."""

from __future__ import annotations

from typing import cast

from fastapi import Request
from rigserve.server.service import InferenceService
from rigserve.server.settings import Settings


def get_service(request: Request) -> InferenceService:
    return cast(InferenceService, request.app.state.service)


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)
