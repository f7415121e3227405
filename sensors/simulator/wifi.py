"""WiFi CSI: a multipath channel in which the room and the body's segments scatter.

The channel of subcarrier f at receive antenna a is a sum of propagation paths
``H(f) = sum_k a_k exp(-j 2 pi f d_k / c)`` (d_k the path length): line of sight,
one image path per wall/floor/ceiling, furniture and each body segment as bistatic
scatterers (``a ~ lambda sqrt(sigma) / ((4 pi)^1.5 d_tx d_rx)``); a body near the direct
path shadows it. 114 subcarriers of a 40 MHz HT channel at 5.32 GHz (indices -58..-2,
2..58, 312.5 kHz apart), 3 antennas half a wavelength apart, 10 packets per frame with
the body interpolated between frames. Hardware: automatic gain control jitter per
packet, carrier/sampling phase offsets, thermal noise, and now and then inf/NaN entries
as MM-Fi's CSI tool writes them.
"""

from __future__ import annotations

import zlib

import numpy as np

from ..specs import BONES
from .quality import NoiseRange
from .render import RenderContext, Rendered, register_renderer

C = 299_792_458.0
CENTER_HZ = 5.32e9
SUBCARRIERS = np.concatenate([np.arange(-58, -1), np.arange(2, 59)])  # 114 indices
FREQS = CENTER_HZ + SUBCARRIERS * 312.5e3
WAVELENGTH = C / CENTER_HZ
ANTENNAS, PACKETS = 3, 10

AGC_DB = NoiseRange(0.3, 4.0)            # gain jitter per packet, dB
THERMAL = NoiseRange(0.02, 0.6)          # noise amplitude relative to the mean |H|
TIMING_NS = NoiseRange(2.0, 40.0)        # per-packet timing offset (phase slope), ns
BAD_FRAME = NoiseRange(0.01, 0.2)        # probability a frame holds inf/NaN entries
WALL_GAMMA, FURNITURE_RCS, BODY_REFLECTIVITY = 0.45, 0.5, 0.6
RAW_SCALE = 30.0  # typical raw amplitude after the receiver's gain control
_PARENT = np.array([p for p, _ in BONES])
_CHILD = np.array([c for _, c in BONES])


def _paths(tx: np.ndarray, rx: np.ndarray, pts: np.ndarray, amp: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Bistatic scatterers: path length and amplitude, (..., S, A) for pts (..., S, 3)."""
    d_tx = np.linalg.norm(pts - tx, axis=-1)[..., None]              # (..., S, 1)
    d_rx = np.linalg.norm(pts[..., None, :] - rx, axis=-1)           # (..., S, A)
    a = WAVELENGTH * np.sqrt(amp)[..., None] / ((4 * np.pi) ** 1.5 * d_tx * d_rx)
    return d_tx + d_rx, a


def _channel(length: np.ndarray, amp: np.ndarray) -> np.ndarray:
    """Sum of paths over the scatterer axis: (..., S, A) -> (..., A, 114) complex."""
    # Phase in cycles, wrapped in float64 so the float32 sin/cos (fast, SIMD) stay exact
    # to ~1e-6 cycles although paths are ~100 wavelengths long.
    cycles = length[..., None] * (FREQS / C)                           # (..., S, A, F)
    angle = (2 * np.pi * (cycles - np.floor(cycles))).astype(np.float32)
    # Move S last-but-one so a batched matmul sums the paths: (..., A, 1, S) @ (..., A, S, F).
    amp_t = np.swapaxes(amp, -1, -2)[..., None, :].astype(np.float32)
    cos = np.swapaxes(np.cos(angle), -3, -2)
    sin = np.swapaxes(np.sin(angle), -3, -2)
    re = (amp_t @ cos)[..., 0, :]
    im = (amp_t @ sin)[..., 0, :]
    return (re - 1j * im).astype(np.complex128)  # exp(-j phi) = cos phi - j sin phi


class WifiLink:
    def __init__(self, ctx: RenderContext) -> None:
        seq = ctx.sequence
        env = seq.env
        self.seq = seq
        self.tx = np.asarray(env.wifi_tx)
        self.rx = np.asarray(env.wifi_rx) + np.outer(np.arange(ANTENNAS), [WAVELENGTH / 2, 0, 0])
        los = np.linalg.norm(self.rx - self.tx, axis=1)[None]                # (1, A)
        self.los = _channel(los, WAVELENGTH / (4 * np.pi * los))             # (A, F)
        self.static = self.los + self._static_channel(env.room, env.furniture_array())
        body = seq.subject.body
        self.body_rcs = BODY_REFLECTIVITY * 2 * body.radii * body.bone_lengths()  # (16,) m^2
        self.radii = body.radii
        q = ctx.quality.get("wifi", 0.5)
        self.agc, self.thermal = AGC_DB.at(q), THERMAL.at(q)
        self.timing, self.p_bad = TIMING_NS.at(q) * 1e-9, BAD_FRAME.at(q)
        self.scale = RAW_SCALE / np.abs(self.static).mean()
        # Each receive chain has its own fixed phase offset (uncalibrated radio).
        self.chain_phase = np.random.default_rng(zlib.crc32(env.code.encode())).uniform(
            0, 2 * np.pi, ANTENNAS)

    def _static_channel(self, room: tuple[float, ...], boxes: np.ndarray) -> np.ndarray:
        """Six image paths (one bounce off each wall, floor, ceiling) and furniture: (A, 114)."""
        h = np.zeros((ANTENNAS, len(FREQS)), dtype=np.complex128)
        for axis in range(3):
            for wall in room[2 * axis: 2 * axis + 2]:
                image = self.tx.copy()
                image[axis] = 2 * wall - image[axis]  # mirror source: one wall bounce
                d = np.linalg.norm(self.rx - image, axis=1)[None]
                h += _channel(d, WALL_GAMMA * WAVELENGTH / (4 * np.pi * d))
        if len(boxes):
            centres = (boxes[:, 0::2] + boxes[:, 1::2]) / 2
            length, amp = _paths(self.tx, self.rx, centres, np.full(len(boxes), FURNITURE_RCS))
            h += _channel(length, amp)
        return h

    def _packet_bodies(self, index: int) -> np.ndarray:
        """Bone midpoints at each packet time, (10, 16, 3): interpolated from the last frame."""
        joints = self.seq.joints
        prev = joints[index - 1] if index > 0 else joints[0] - self.seq.velocities[0] / 10.0
        mids_now = (joints[index][_PARENT] + joints[index][_CHILD]) / 2
        mids_prev = (prev[_PARENT] + prev[_CHILD]) / 2
        w = ((np.arange(PACKETS) + 1) / PACKETS)[:, None, None]
        return mids_prev * (1 - w) + mids_now * w

    def _shadowing(self, mids: np.ndarray) -> np.ndarray:
        """Attenuation of the direct path by a body near it: (10, A) in (0, 1]."""
        seg = self.rx - self.tx                                       # (A, 3)
        rel = mids[:, :, None, :] - self.tx                           # (10, 16, 1, 3)
        s = np.clip((rel * seg).sum(-1) / (seg * seg).sum(-1), 0, 1)  # (10, 16, A)
        gap = np.linalg.norm(rel - s[..., None] * seg, axis=-1) - self.radii[:, None]
        return 1 - 0.6 * np.exp(-((np.maximum(gap, 0).min(axis=1) / 0.25) ** 2))

    def __call__(self, index: int, rng: np.random.Generator) -> Rendered:
        mids = self._packet_bodies(index)
        length, amp = _paths(self.tx, self.rx, mids, np.broadcast_to(self.body_rcs, mids.shape[:2]))
        # Shadowing removes part of the direct path from the static channel: (10, A, F).
        blocked = (1 - self._shadowing(mids))[..., None] * self.los
        h = self.static[None] - blocked + _channel(length, amp)
        h = h.transpose(1, 2, 0) * self.scale                        # (A, F, packets)
        h = self._hardware(h, rng)
        amp_out, phase = np.abs(h), np.angle(h)
        if rng.random() < self.p_bad:
            n = rng.integers(1, 7)
            flat = amp_out.reshape(-1)
            flat[rng.choice(flat.size, n, replace=False)] = rng.choice([np.inf, -np.inf, np.nan], n)
        return Rendered(amp_out, {"phase": phase})

    def _hardware(self, h: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        gain = 10 ** (rng.normal(0, self.agc, PACKETS) / 20)                     # (P,)
        cfo = rng.uniform(0, 2 * np.pi, PACKETS)
        slope = -2 * np.pi * (SUBCARRIERS * 312.5e3)[:, None] * rng.normal(0, self.timing, PACKETS)
        offset = np.exp(1j * (cfo[None, None] + slope[None] + self.chain_phase[:, None, None]))
        noise = (rng.standard_normal(h.shape) + 1j * rng.standard_normal(h.shape)) * (
            self.thermal * RAW_SCALE / np.sqrt(2))
        return h * gain * offset + noise


register_renderer("wifi")(WifiLink)
