"""WiFi CSI: a multipath channel in which the room and the body's segments scatter.

The channel of subcarrier f at receive antenna a is a sum of propagation paths
``H(f) = sum_k a_k exp(-j 2 pi f d_k / c)`` (d_k the path length): line of sight,
one image path per wall/floor/ceiling, furniture and each body segment as bistatic
scatterers (``a ~ lambda sqrt(sigma) / ((4 pi)^1.5 d_tx d_rx)``). Body parts inside a
path's first Fresnel zone attenuate it (the dominant, smooth way a body changes CSI
amplitude), so the channel depends on where limbs are, not only on the phase of echoes.
114 subcarriers of a 40 MHz HT channel at 5.32 GHz (indices -58..-2,
2..58, 312.5 kHz apart), 3 antennas half a wavelength apart, 10 packets per frame with
the body interpolated between frames. Hardware: automatic gain control jitter per
packet, carrier/sampling phase offsets, thermal noise, and now and then inf/NaN entries
as MM-Fi's CSI tool writes them.
"""

from __future__ import annotations

import zlib

import numpy as np

from .body import BONE_CHILD, BONE_PARENT
from .quality import NoiseRange
from .render import RenderContext, Rendered, register_renderer

C = 299_792_458.0
CENTER_HZ = 5.32e9
SUBCARRIERS = np.concatenate([np.arange(-58, -1), np.arange(2, 59)])  # 114 indices
_STEP_HZ = 312.5e3  # subcarrier spacing
FREQS = CENTER_HZ + SUBCARRIERS * _STEP_HZ
WAVELENGTH = C / CENTER_HZ
ANTENNAS, PACKETS = 3, 10

AGC_DB = NoiseRange(0.3, 8.0, power=2.0)           # gain jitter per packet, dB
THERMAL = NoiseRange(0.01, 1.0, power=3.0)         # noise amplitude relative to the mean |H|
TIMING_NS = NoiseRange(2.0, 40.0)        # per-packet timing offset (phase slope), ns
BAD_FRAME = NoiseRange(0.01, 0.2)        # probability a frame holds inf/NaN entries
WALL_GAMMA, FURNITURE_RCS, BODY_REFLECTIVITY = 0.45, 0.5, 0.6
BLOCKING_PER_M = 2.0  # path loss exponent per metre of blocking body-part radius
RAW_SCALE = 30.0  # typical raw amplitude after the receiver's gain control


def _paths(tx: np.ndarray, rx: np.ndarray, pts: np.ndarray, amp: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Bistatic scatterers: path length and amplitude, (..., S, A) for pts (..., S, 3)."""
    d_tx = np.linalg.norm(pts - tx, axis=-1)[..., None]              # (..., S, 1)
    d_rx = np.linalg.norm(pts[..., None, :] - rx, axis=-1)           # (..., S, A)
    a = WAVELENGTH * np.sqrt(amp)[..., None] / ((4 * np.pi) ** 1.5 * d_tx * d_rx)
    return d_tx + d_rx, a


def _channel(length: np.ndarray, amp: np.ndarray) -> np.ndarray:
    """Sum of paths over the scatterer axis: (..., S, A) -> (..., A, 114) complex.

    Phase of path d at subcarrier k: 2 pi d (f_c + k df) / c cycles-wise split in two: the
    carrier term d f_c / c (~100 cycles) is wrapped to [0, 1) in float64 once per path, and
    k d df / c (< 0.4 cycles) is small, so the (..., A, S, F) phases need only float32,
    where sin/cos are fast (SIMD) and exact to ~1e-7 cycles.
    """
    length_t = np.swapaxes(length, -1, -2)                             # (..., A, S)
    cycles = length_t * (CENTER_HZ / C)
    carrier = (cycles - np.floor(cycles)).astype(np.float32)[..., None]
    step = (length_t * (_STEP_HZ / C)).astype(np.float32)[..., None]
    angle = np.float32(2 * np.pi) * (carrier + step * SUBCARRIERS.astype(np.float32))
    # (..., A, 1, S) @ (..., A, S, F) sums the paths per antenna.
    amp_t = np.swapaxes(amp, -1, -2)[..., None, :].astype(np.float32)
    re = (amp_t @ np.cos(angle))[..., 0, :]
    im = (amp_t @ np.sin(angle))[..., 0, :]
    return np.asarray(re - 1j * im, dtype=np.complex128)  # exp(-j phi) = cos phi - j sin phi


class WifiLink:
    def __init__(self, ctx: RenderContext) -> None:
        seq = ctx.sequence
        env = seq.env
        self.seq = seq
        self.tx = np.asarray(env.wifi_tx)
        self.rx = np.asarray(env.wifi_rx) + np.outer(np.arange(ANTENNAS), [WAVELENGTH / 2, 0, 0])
        self._build_paths(env.room)
        self.furniture = self._furniture_channel(env.furniture_array())
        body = seq.subject.body
        self.body_rcs = BODY_REFLECTIVITY * 2 * body.radii * body.bone_lengths()  # (16,) m^2
        # Two blocking points per bone, each as strong as the bone is thick.
        self.block_r = np.repeat(body.radii, 2)
        self.block_k = BLOCKING_PER_M * self.block_r
        q = ctx.quality_of("wifi")
        self.agc, self.thermal = AGC_DB.at(q), THERMAL.at(q)
        self.timing, self.p_bad = TIMING_NS.at(q) * 1e-9, BAD_FRAME.at(q)
        self.scale = RAW_SCALE / np.abs(self.paths.sum(0) + self.furniture).mean()
        # Each receive chain has its own fixed phase offset (uncalibrated radio).
        self.chain_phase = np.random.default_rng(zlib.crc32(env.code.encode())).uniform(
            0, 2 * np.pi, ANTENNAS)
        self.chain_rot = np.exp(1j * self.chain_phase)

    def _build_paths(self, room: tuple[float, ...]) -> None:
        """Line of sight and one bounce off each wall, floor and ceiling (image method).

        ``self.paths`` (7, A, F) holds each path's response; ``self.seg_a/seg_b`` (S, 3)
        the straight segments a body can block, ``self.seg_path`` (S,) their path and
        ``self.seg_onehot`` (S, 7) the same as a matrix that sums segments into paths.
        """
        rx_c = self.rx.mean(axis=0)
        los = np.linalg.norm(self.rx - self.tx, axis=1)[None]                # (1, A)
        responses = [_channel(los, WAVELENGTH / (4 * np.pi * los))]
        seg_a, seg_b, seg_path = [self.tx], [rx_c], [0]
        for axis in range(3):
            for wall in room[2 * axis: 2 * axis + 2]:
                image = self.tx.copy()
                image[axis] = 2 * wall - image[axis]  # mirror source: one wall bounce
                d = np.linalg.norm(self.rx - image, axis=1)[None]
                responses.append(_channel(d, WALL_GAMMA * WAVELENGTH / (4 * np.pi * d)))
                # The bounce point: where the image-to-receiver line meets the wall.
                f = (wall - image[axis]) / (rx_c[axis] - image[axis])
                bounce = image + f * (rx_c - image)
                seg_a += [self.tx, bounce]
                seg_b += [bounce, rx_c]
                seg_path += [len(responses) - 1] * 2
        self.paths = np.stack(responses)
        self.seg_a, self.seg_b = np.stack(seg_a), np.stack(seg_b)
        self.seg_path = np.asarray(seg_path)
        self.seg_onehot = np.eye(len(self.paths))[self.seg_path]                # (S, 7)

    def _furniture_channel(self, boxes: np.ndarray) -> np.ndarray:
        if not len(boxes):
            return np.zeros((ANTENNAS, len(FREQS)), dtype=np.complex128)
        centres = (boxes[:, 0::2] + boxes[:, 1::2]) / 2
        length, amp = _paths(self.tx, self.rx, centres, np.full(len(boxes), FURNITURE_RCS))
        return _channel(length, amp)

    def _packet_joints(self, index: int) -> np.ndarray:
        """Joints at each packet time, (10, 17, 3): interpolated from the previous frame."""
        joints = self.seq.joints
        prev = joints[index - 1] if index > 0 else joints[0] - self.seq.velocities[0] / 10.0
        w = ((np.arange(PACKETS) + 1) / PACKETS)[:, None, None]
        return np.asarray(prev * (1 - w) + joints[index] * w)

    def _blocking(self, pts: np.ndarray) -> np.ndarray:
        """Amplitude factor of each path (10, 7): exp(-sum of body blocking of its segments).

        A body point blocks a segment by how deep it sits in the first Fresnel zone there,
        radius ``sqrt(lambda d1 d2 / (d1 + d2))``. Point-to-segment distances come from dot
        products (two (10*B, 3) @ (3, S) products) rather than (10, B, S, 3) differences.
        """
        a, L = self.seg_a, self.seg_b - self.seg_a                            # (S, 3)
        LL, aL = (L * L).sum(1), (a * L).sum(1)
        proj = pts @ L.T - aL                               # (10, B, S): (p - a) . L
        # |p - a|^2, clamped: rounding can push a point on the segment slightly negative.
        rel2 = (pts * pts).sum(-1)[..., None] - 2 * (pts @ a.T) + (a * a).sum(1)
        s = np.clip(proj / LL, 0.0, 1.0)
        dist2 = np.maximum(rel2 - s * (2 * proj - s * LL), 0.0)  # |p - a - s L|^2
        gap = np.sqrt(dist2) - self.block_r[:, None]
        fresnel = np.sqrt(WAVELENGTH * np.sqrt(LL) * s * (1 - s)) + 0.05
        loss = (self.block_k[:, None] * np.exp(-((np.maximum(gap, 0) / fresnel) ** 2))).sum(1)
        return np.asarray(np.exp(-(loss @ self.seg_onehot)))  # (10, S) @ (S, 7) per path

    def __call__(self, index: int, rng: np.random.Generator) -> Rendered:
        joints = self._packet_joints(index)                                  # (10, 17, 3)
        a, b = joints[:, BONE_PARENT], joints[:, BONE_CHILD]                 # (10, 16, 3)
        mids = (a + b) / 2
        blockers = np.concatenate([a * 0.75 + b * 0.25, a * 0.25 + b * 0.75], axis=1)
        length, amp = _paths(self.tx, self.rx, mids, np.broadcast_to(self.body_rcs, mids.shape[:2]))
        # (10, 7) @ (7, A*F): blocked propagation paths, + furniture, + body scattering.
        paths = (self._blocking(blockers) @ self.paths.reshape(len(self.paths), -1)).reshape(
            PACKETS, ANTENNAS, -1)
        h = paths + self.furniture + _channel(length, amp)
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
        slope = -2 * np.pi * (SUBCARRIERS * _STEP_HZ)[:, None] * rng.normal(0, self.timing, PACKETS)
        # exp(j (chain + cfo + slope)) = exp(j chain) exp(j (cfo + slope)): (A, 1, 1) x (F, P).
        offset = self.chain_rot[:, None, None] * np.exp(1j * (cfo + slope))[None]
        # One draw of both parts: the same numbers as drawing the real, then the imaginary.
        z = rng.standard_normal((2, *h.shape)) * (self.thermal * RAW_SCALE / np.sqrt(2))
        return np.asarray(h * (gain * offset) + (z[0] + 1j * z[1]))


register_renderer("wifi")(WifiLink)
