"""Sequences of motion: who (subject), what (action), where (room), for how long.

Randomness is layered so that any subset of sequences can be regenerated on its own:
a subject's body and habits come from ``(seed, subject)``; a sequence's variation from
``(seed, environment, subject, action)``. The result is the ground truth the sensors
render: joints (T, 17, 3) in the rig frame and their velocities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..specs import ACTION_CODES, ENVIRONMENTS, JOINT_NAMES, NUM_JOINTS, SUBJECTS
from .actions import get_action
from .body import Body, forward_kinematics, random_body, rotation_matrices
from .environment import Environment, get_environment

#: MM-Fi frame rate (frames per second).
FPS = 10.0

_ANKLES = [JOINT_NAMES.index("left_ankle"), JOINT_NAMES.index("right_ankle")]


def _index(code: str, codes: tuple[str, ...], what: str) -> int:
    try:
        return codes.index(code)
    except ValueError:
        raise ValueError(f"unknown {what} {code!r}; accepted: {codes[0]}..{codes[-1]}") from None


def subject_rng(seed: int, subject: str) -> np.random.Generator:
    # The stream tag (1) keeps subject and sequence streams apart for equal indices.
    return np.random.default_rng([seed, 1, _index(subject, SUBJECTS, "subject")])


def sequence_rng(seed: int, env: str, subject: str, action: str) -> np.random.Generator:
    """The generator for everything a sequence renders, independent of other sequences."""
    key = [seed, 2, _index(env, ENVIRONMENTS, "environment"),
           _index(subject, SUBJECTS, "subject"), _index(action, ACTION_CODES, "action")]
    return np.random.default_rng(key)


@dataclass(frozen=True)
class Subject:
    code: str
    body: Body
    speed: float     # >1 moves faster than the action's nominal period
    amplitude: float  # how fully the subject performs movements
    offset: tuple[float, float]  # standing place relative to the room's stage, metres
    heading: float   # radians; 0 faces the rig


def make_subject(seed: int, subject: str) -> Subject:
    rng = subject_rng(seed, subject)
    body = random_body(rng)
    return Subject(
        code=subject, body=body,
        speed=float(rng.uniform(0.8, 1.25)), amplitude=float(rng.uniform(0.85, 1.1)),
        offset=(float(rng.uniform(-0.4, 0.4)), float(rng.uniform(-0.35, 0.35))),
        heading=float(rng.uniform(-0.4, 0.4)),
    )


@dataclass(frozen=True)
class Sequence:
    """Ground-truth motion of one E/S/A sequence."""

    env: Environment
    subject: Subject
    action: str
    joints: np.ndarray      # (T, 17, 3) metres, rig frame
    velocities: np.ndarray  # (T, 17, 3) m/s


def _idle_sway(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Small smooth natural variation of every joint angle: (T, 17, 3) radians."""
    freqs = rng.uniform(0.05, 0.4, size=(3, NUM_JOINTS, 3))
    phases = rng.uniform(0, 2 * np.pi, size=(3, NUM_JOINTS, 3))
    amps = rng.uniform(0.0, 0.04, size=(3, NUM_JOINTS, 3))
    # Sum of three slow sinusoids per angle: (T, 1, 1, 1) against (3, 17, 3) -> (T, 17, 3).
    waves = amps * np.sin(2 * np.pi * freqs * t[:, None, None, None] + phases)
    return np.asarray(waves.sum(axis=1))


def generate_sequence(seed: int, env: str, subject: str, action: str, frames: int) -> Sequence:
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    room = get_environment(env)
    who = make_subject(seed, subject)
    pattern = get_action(action)
    rng = sequence_rng(seed, env, subject, action)

    t = np.arange(frames) / FPS
    period = pattern.period_s / who.speed * rng.uniform(0.92, 1.08)
    u = t / period + rng.uniform(0.0, 1.0)  # random phase at the first frame
    pose = pattern.program(u, who.amplitude * rng.uniform(0.9, 1.1))
    angles = pose.angles + _idle_sway(rng, t)

    # Face the rig (-y) with the subject's heading; the sequence jitters it a little.
    yaw = np.pi + who.heading + rng.normal(0.0, 0.05)
    root_rot = np.broadcast_to(rotation_matrices(np.array([0.0, 0.0, yaw])), (frames, 3, 3))
    base = np.array([room.stage[0] + who.offset[0] + rng.normal(0, 0.05),
                     room.stage[1] + who.offset[1] + rng.normal(0, 0.05), 0.0])
    root_pos = base + pose.shift @ root_rot[0].T  # body-frame shift -> rig frame, (T, 3)

    joints = forward_kinematics(who.body, angles, root_pos, root_rot)
    # Feet on the floor: drop the body until the lower ankle stands at ankle height, then
    # add the action's lift (jumps, rising on the toes).
    ground = who.body.ankle_height - joints[:, _ANKLES, 2].min(axis=1) + pose.lift
    joints[..., 2] += ground[:, None]
    velocities = np.gradient(joints, 1.0 / FPS, axis=0) if frames > 1 else np.zeros_like(joints)
    return Sequence(env=room, subject=who, action=action, joints=joints, velocities=velocities)
