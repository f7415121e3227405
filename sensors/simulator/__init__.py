"""The synthetic rig: a simulated body seen by depth, LiDAR, mmWave and WiFi, in MM-Fi layout."""

from . import depth, keypoints, lidar, mmwave, wifi  # noqa: F401  (register the renderers)
from .actions import ACTIONS, ActionPattern, get_action
from .body import Body, forward_kinematics, make_body, random_body
from .environment import ENVIRONMENT_LAYOUTS, Environment, Mount, get_environment
from .motion import FPS, Sequence, Subject, generate_sequence, make_subject
from .quality import DEFAULT_QUALITY, NoiseRange, parse_quality, resolve_quality
from .render import RENDERERS, RenderContext, Rendered, Renderer, build_renderer, register_renderer
from .runner import (
    DEMO_DEPTH_SIZE,
    MMFI_FRAMES,
    SequenceJob,
    SimulationSummary,
    render_sequence,
    select_sequences,
    simulate,
)

__all__ = [
    "ACTIONS", "DEFAULT_QUALITY", "DEMO_DEPTH_SIZE", "ENVIRONMENT_LAYOUTS", "FPS", "MMFI_FRAMES",
    "RENDERERS", "ActionPattern", "Body", "Environment", "Mount", "NoiseRange", "RenderContext",
    "Rendered", "Renderer", "Sequence", "SequenceJob", "SimulationSummary", "Subject",
    "build_renderer", "forward_kinematics", "generate_sequence", "get_action", "get_environment",
    "make_body", "make_subject", "parse_quality", "random_body", "register_renderer",
    "render_sequence", "resolve_quality", "select_sequences", "simulate",
]
