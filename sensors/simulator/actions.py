"""The 27 MM-Fi action patterns as joint-angle programs, one registered function each.

An action turns time into a :class:`Pose` track: local joint angles (T, 17, 3) in the
body frame of :mod:`.body`, a pelvis shift in the body frame (T, 3) and a lift (T,) for
jumps. Envelopes shape the motion: ``cycle`` (smooth periodic), ``hold`` (rise, hold,
return, rest), ``strike`` (one quick movement then rest: throws, kicks) repeated at the
action's period. Left/right actions are one function with a ``side`` argument, mirrored
by sign, so a pair differs only in which limbs move.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rigserve.registry import Registry

from ..specs import ACTION_CODES, ACTION_NAMES, NUM_JOINTS
from .body import JOINT

# Sign that moves a limb of this side away from the body midline (body x = subject's right):
# a rotation about y (abduction) or z (horizontal swing) by +angle moves a left limb outward.
_OUT = {"left": 1.0, "right": -1.0}
_OTHER = {"left": "right", "right": "left"}
SIDES = ("left", "right")


# ---- envelopes: u is the phase in cycles, outputs in [0, 1] ----------------------------

def cycle(u: np.ndarray) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * u)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.asarray(x * x * (3 - 2 * x))


def hold(u: np.ndarray) -> np.ndarray:
    f = np.mod(u, 1.0)
    return np.asarray(_smoothstep(f / 0.25) * (1 - _smoothstep((f - 0.6) / 0.25)))


def strike(u: np.ndarray) -> np.ndarray:
    f = np.mod(u, 1.0)
    return np.asarray(_smoothstep((f - 0.25) / 0.1) * (1 - _smoothstep((f - 0.4) / 0.25)))


def windup(u: np.ndarray) -> np.ndarray:
    """The preparation before a strike (arm back, knee bent): peaks just before it."""
    f = np.mod(u, 1.0)
    return np.asarray(_smoothstep(f / 0.2) * (1 - _smoothstep((f - 0.22) / 0.08)))


class Pose:
    """Angle tracks being composed by an action program (angles in radians)."""

    def __init__(self, t: np.ndarray) -> None:
        self.angles = np.zeros((t.shape[0], NUM_JOINTS, 3))
        self.shift = np.zeros((t.shape[0], 3))
        self.lift = np.zeros(t.shape[0])

    def _add(self, joint: str, axis: int, value: np.ndarray | float) -> Pose:
        self.angles[:, JOINT[joint], axis] += value
        return self

    # Limbs hang down in the rest pose, so +x rotation swings them forward.
    def flex(self, side: str, limb: str, value: np.ndarray | float) -> Pose:
        return self._add(f"{side}_{limb}", 0, value)

    def abduct(self, side: str, limb: str, value: np.ndarray | float) -> Pose:
        return self._add(f"{side}_{limb}", 1, _OUT[side] * value)

    def swing_out(self, side: str, limb: str, value: np.ndarray | float) -> Pose:
        return self._add(f"{side}_{limb}", 2, _OUT[side] * value)

    def bend_knee(self, side: str, value: np.ndarray | float) -> Pose:
        return self._add(f"{side}_knee", 0, -value)  # the shin folds backwards

    def bend_elbow(self, side: str, value: np.ndarray | float) -> Pose:
        return self._add(f"{side}_elbow", 0, value)

    # The spine points up, so forward bowing is a negative x rotation.
    def bow(self, joint: str, value: np.ndarray | float) -> Pose:
        return self._add(joint, 0, -value)

    def lean(self, side: str, joint: str, value: np.ndarray | float) -> Pose:
        return self._add(joint, 1, -_OUT[side] * value)  # lateral bend towards `side`

    def twist(self, side: str, joint: str, value: np.ndarray | float) -> Pose:
        return self._add(joint, 2, _OUT[side] * value)  # torso turns towards `side`

    def move(self, dx: np.ndarray | float = 0.0, dy: np.ndarray | float = 0.0) -> Pose:
        self.shift[:, 0] += dx
        self.shift[:, 1] += dy
        return self


Program = Callable[[np.ndarray, float], Pose]


@dataclass(frozen=True)
class ActionPattern:
    code: str
    name: str
    period_s: float
    program: Program  # (phase u in cycles (T,), amplitude factor) -> Pose


ACTIONS: Registry[str, ActionPattern] = Registry("action", error=ValueError)


def _sided(fn: Callable[..., Pose], side: str, u: np.ndarray, a: float) -> Pose:
    return fn(u, a, side)


def register_action(code: str, period_s: float, side: str | None = None
                    ) -> Callable[[Callable[..., Pose]], Callable[..., Pose]]:
    def deco(fn: Callable[..., Pose]) -> Callable[..., Pose]:
        prog: Program = fn if side is None else functools.partial(_sided, fn, side)
        ACTIONS.add(code, ActionPattern(code, ACTION_NAMES[ACTION_CODES.index(code)], period_s,
                                        prog))
        return fn
    return deco


def get_action(code: str) -> ActionPattern:
    return ACTIONS[code]


# ---- the programs ---------------------------------------------------------------------

@register_action("A01", 4.0)
def stretching_and_relaxing(u: np.ndarray, a: float) -> Pose:
    s = hold(u) * a
    p = Pose(u)
    for side in SIDES:
        p.abduct(side, "shoulder", 2.8 * s)
    p.bow("spine", -0.15 * s).lift += 0.04 * s  # lean back and rise on the toes
    return p


@register_action("A02", 3.0)
def horizontal_chest_expansion(u: np.ndarray, a: float) -> Pose:
    s = cycle(u) * a
    p = Pose(u)
    for side in SIDES:
        p.flex(side, "shoulder", 1.5).swing_out(side, "shoulder", 1.4 * s).bend_elbow(side, 0.1)
    return p


@register_action("A03", 3.0)
def vertical_chest_expansion(u: np.ndarray, a: float) -> Pose:
    s = cycle(u) * a
    p = Pose(u)
    for side in SIDES:
        p.flex(side, "shoulder", 0.6 + 2.3 * s).abduct(side, "shoulder", 0.3)
        p.bend_elbow(side, 0.7 * (1 - s))
    return p


def _twist(u: np.ndarray, a: float, side: str) -> Pose:
    s = cycle(u) * a
    p = Pose(u)
    p.twist(side, "spine", 0.7 * s).twist(side, "thorax", 0.3 * s)
    for sd in SIDES:  # hands in front of the chest
        p.flex(sd, "shoulder", 0.5).abduct(sd, "shoulder", 0.35).bend_elbow(sd, 1.7)
    return p


register_action("A04", 3.0, "left")(_twist)
register_action("A05", 3.0, "right")(_twist)


@register_action("A06", 1.2)
def mark_time(u: np.ndarray, a: float) -> Pose:
    w = np.sin(2 * np.pi * u) * a
    p = Pose(u)
    for side, sgn in (("right", 1.0), ("left", -1.0)):
        up = np.maximum(sgn * w, 0.0)
        p.flex(side, "hip", 0.9 * up).bend_knee(side, 1.5 * up)
        p.flex(side, "shoulder", -0.45 * sgn * w).bend_elbow(side, 0.4)  # arms swing opposite
    return p


def _limb_extension(u: np.ndarray, a: float, side: str) -> Pose:
    s = hold(u) * a
    p = Pose(u)
    p.abduct(side, "shoulder", 1.55 * s).abduct(side, "hip", 0.55 * s)
    p.lean(_OTHER[side], "spine", 0.12 * s)  # balance over the standing leg
    return p


register_action("A07", 3.5, "left")(_limb_extension)
register_action("A08", 3.5, "right")(_limb_extension)


def _lunge_front(u: np.ndarray, a: float, side: str) -> Pose:
    s = hold(u) * a
    back = _OTHER[side]
    p = Pose(u)
    p.flex(side, "hip", 1.1 * s).bend_knee(side, 1.3 * s)
    p.flex(back, "hip", -0.35 * s).bend_knee(back, 0.5 * s)
    p.move(dy=0.35 * s)
    for sd in SIDES:  # hands on the hips
        p.abduct(sd, "shoulder", 0.35).bend_elbow(sd, 1.2)
    return p


register_action("A09", 3.0, "left")(_lunge_front)
register_action("A10", 3.0, "right")(_lunge_front)


@register_action("A11", 3.0)
def limb_extension_both(u: np.ndarray, a: float) -> Pose:
    s = cycle(u) * a
    p = Pose(u)
    for side in SIDES:
        p.abduct(side, "shoulder", 1.5 * s).flex(side, "shoulder", 0.35 * s)
    p.bow("spine", -0.1 * s).lift += 0.02 * s
    return p


@register_action("A12", 3.5)
def squat(u: np.ndarray, a: float) -> Pose:
    s = cycle(u) * a
    p = Pose(u)
    for side in SIDES:
        p.flex(side, "hip", 1.5 * s).bend_knee(side, 2.1 * s).flex(side, "shoulder", 1.5 * s)
    p.bow("spine", 0.35 * s)
    return p


def _raise_hand(u: np.ndarray, a: float, side: str) -> Pose:
    s = hold(u) * a
    return Pose(u).flex(side, "shoulder", 2.9 * s).bend_elbow(side, 0.1 * s)


register_action("A13", 3.5, "left")(_raise_hand)
register_action("A14", 3.5, "right")(_raise_hand)


def _lunge_side(u: np.ndarray, a: float, side: str) -> Pose:
    s = hold(u) * a
    p = Pose(u)
    p.abduct(side, "hip", 0.55 * s).bend_knee(side, 1.2 * s).flex(side, "hip", 0.6 * s)
    p.abduct(_OTHER[side], "hip", 0.25 * s)
    p.move(dx=-_OUT[side] * 0.35 * s)  # body x is the subject's right
    return p


register_action("A15", 3.0, "left")(_lunge_side)
register_action("A16", 3.0, "right")(_lunge_side)


def _wave(u: np.ndarray, a: float, side: str) -> Pose:
    s = hold(u) * a
    # Four forearm waves per hold; the wave rides on the raised arm.
    wave = 0.55 * np.sin(2 * np.pi * 4 * u) * s
    p = Pose(u)
    p.abduct(side, "shoulder", 2.4 * s).bend_elbow(side, 0.3 * s)
    p.abduct(side, "elbow", wave)
    return p


register_action("A17", 4.0, "left")(_wave)
register_action("A18", 4.0, "right")(_wave)


@register_action("A19", 4.0)
def picking_up_things(u: np.ndarray, a: float) -> Pose:
    s = hold(u) * a
    p = Pose(u)
    p.bow("spine", 1.1 * s).bow("thorax", 0.3 * s)
    for side in SIDES:
        p.flex(side, "hip", 0.5 * s).bend_knee(side, 0.9 * s).flex(side, "shoulder", 0.9 * s)
    return p


def _throw(u: np.ndarray, a: float, side: str) -> Pose:
    w, s = windup(u) * a, strike(u) * a
    p = Pose(u)
    p.flex(side, "shoulder", -0.8 * w + 2.5 * s).bend_elbow(side, 1.4 * w + 0.2 * s)
    p.abduct(side, "shoulder", 0.5 * w)
    p.twist(side, "spine", 0.45 * w - 0.45 * s)  # wind the torso back, then through
    return p


register_action("A20", 2.5, "left")(_throw)
register_action("A21", 2.5, "right")(_throw)


def _kick(u: np.ndarray, a: float, side: str) -> Pose:
    w, s = windup(u) * a, strike(u) * a
    p = Pose(u)
    p.flex(side, "hip", -0.3 * w + 1.3 * s).bend_knee(side, 1.2 * w + 0.1 * s)
    p.bend_knee(_OTHER[side], 0.15 * (w + s))
    for sd in SIDES:  # arms out for balance
        p.abduct(sd, "shoulder", 0.35 * (w + s))
    return p


register_action("A22", 2.0, "left")(_kick)
register_action("A23", 2.0, "right")(_kick)


def _body_extension(u: np.ndarray, a: float, side: str) -> Pose:
    s = hold(u) * a
    p = Pose(u)
    p.lean(side, "spine", 0.45 * s).lean(side, "thorax", 0.2 * s)
    p.abduct(_OTHER[side], "shoulder", 2.6 * s).bend_elbow(_OTHER[side], 0.2 * s)
    return p


register_action("A24", 3.5, "left")(_body_extension)
register_action("A25", 3.5, "right")(_body_extension)


@register_action("A26", 1.6)
def jumping_up(u: np.ndarray, a: float) -> Pose:
    f = np.mod(u, 1.0)
    crouch = np.exp(-(((f - 0.2) / 0.09) ** 2)) + 0.6 * np.exp(-(((f - 0.8) / 0.06) ** 2))
    air = np.where((f > 0.3) & (f < 0.7), np.sin(np.pi * (f - 0.3) / 0.4), 0.0)
    p = Pose(u)
    for side in SIDES:
        p.flex(side, "hip", 0.7 * crouch * a).bend_knee(side, 1.1 * crouch * a)
        p.flex(side, "shoulder", -0.6 * crouch * a + 2.4 * air * a)
    p.bow("spine", 0.25 * crouch * a)
    p.lift += 0.3 * air * a  # flight: a parabola-like arc of ~0.3 m
    return p


@register_action("A27", 3.5)
def bowing(u: np.ndarray, a: float) -> Pose:
    s = hold(u) * a
    return Pose(u).bow("spine", 0.85 * s).bow("thorax", 0.2 * s).bow("neck", 0.3 * s)


if len(ACTIONS) != len(ACTION_CODES):  # every MM-Fi action must have a program
    raise RuntimeError(f"actions registered: {sorted(ACTIONS)}; expected {ACTION_CODES}")
