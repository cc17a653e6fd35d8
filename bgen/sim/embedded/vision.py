"""Agent vision: what the drone's camera sees, accumulated in a FilterWorld.

voxelsim (``voxelsim-compute``) rasterizes the world on the GPU from the agent's camera: every
cell is a unit cube (optionally displaced by a noise field), the nearest cube per pixel is
recorded, and the filter world is updated: each recorded cell is inserted, and each cell of
the filter world that lies in front of what the pixel now sees is removed (the space is seen
to be empty). We reproduce that on the CPU with one ray per pixel:

    AgentVisionRenderer(world, [w, h], noise)
      world snapshot (taken at construction, as voxelsim uploads it once)
      update_filter_world_py(camera, proj, filter_world, dynamic_world, timestamp, callback)
        │ caller thread: converts arguments, marks ``timestamp`` as updating, queues the job
        ▼
      "agent-vision" daemon thread, one job at a time (voxelsim: one render thread)
        observe(): frustum cull → noise displacement → dense grids → vectorized DDA per pixel
        → FilterWorld: insert seen cells, then remove carved cells; timestamp set,
          ``timestamp`` no longer updating → callback(filter_world, timestamp), errors dropped
      render_changeset_py(same arguments)
        → callback(WorldChangeset): nothing applied; ``timestamp`` stays updating until
          ``changeset.update_filter_world_py(fw)`` applies it

Semantics taken from voxelsim (``lib.rs``, ``pipeline.rs``, ``shaders/voxelcoord.wgsl``,
``shaders/filter.wgsl``):

* Every stored cell is an opaque unit cube centred on its coordinate, whatever its bits; a
  cell whose bits are empty hides what is behind it but is not inserted.
* The view is ``look_at_rh(pos, pos + forward, up)`` and the projection nalgebra's
  ``Perspective3(aspect, fov_vertical, near, max)``, used without a depth remap, so depth
  clipping keeps view depths in ``[2·near·max/(near+max), max]`` (≈ 0.99 … 50 by default).
  Pixels sample their centres; the image is ``w × h`` whatever ``aspect`` says.
* Noise (``NoiseParams``, when enabled) moves each cube before it is drawn: its centre ``c``
  goes to ``round(c + dir · fbm(c, eye) · 0.4 · |c − eye|)`` with ``dir`` the unit vector from
  the eye to ``c`` and ``fbm`` a 4-octave 6-D simplex noise of (c · spatial_freq, eye ·
  seed_freq). Seen cells are inserted at their displaced coordinates, so the filter world
  holds the agent's noisy belief, not the truth. Frustum culling uses the undisplaced cells.
* voxelsim also binds ``update_filter_world_with_uncertainty_py``, which needs an
  ``UncertaintyWorld``; the embedded backend has neither.
* ``is_updating_py(ts)`` is true from the ``update_filter_world_py`` call with that exact
  timestamp until its result is applied; ``timestamp_py()`` is the last applied timestamp
  (None before any).

The ray casting is pure (``observe``) and never touches a socket; sending a FilterWorld to the
renderer goes through ``network.py``.
"""

from __future__ import annotations

import math
import queue
import threading
from dataclasses import dataclass

import numpy as np

from bgen.sim.embedded import wire
from bgen.sim.embedded.convert import to_float, to_float_array, to_instance, to_int, \
    to_int_array
from bgen.sim.embedded.convert import Sealed, SealedInstances

FILLED, SPARSE = 16, 32
_CUBE_RADIUS = math.sqrt(3.0) / 2.0  # a unit cube fits in this sphere around its centre


# =========================================================================================
# PyO3-style argument binding (arity errors worded as PyO3 words them)
# =========================================================================================

def _parameter_list(names: list) -> str:
    quoted = [f"'{n}'" for n in names]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def bind_arguments(full_name: str, names: tuple, args: tuple, kwargs: dict) -> dict:
    """Bind ``args``/``kwargs`` to ``names`` (all required) or raise PyO3's TypeError."""
    if len(args) > len(names):
        was = "was" if len(args) == 1 else "were"
        raise TypeError(f"{full_name} takes {len(names)} positional arguments but "
                        f"{len(args)} {was} given")
    bound = dict(zip(names, args))
    for key, value in kwargs.items():
        if key not in names:
            raise TypeError(f"{full_name} got an unexpected keyword argument '{key}'")
        if key in bound:
            raise TypeError(f"{full_name} got multiple values for argument '{key}'")
        bound[key] = value
    missing = [n for n in names if n not in bound]
    if missing:
        plural = "argument" if len(missing) == 1 else "arguments"
        raise TypeError(f"{full_name} missing {len(missing)} required positional {plural}: "
                        f"{_parameter_list(missing)}")
    return bound


# =========================================================================================
# Noise (voxelcoord.wgsl: 6-D simplex fBm, float32 and wrapping u32 hashes as on the GPU)
# =========================================================================================

class NoiseParams(Sealed):
    """Parameters of the observation noise; build with ``default_with_seed_py`` or ``none_py``."""

    __slots__ = ("_spatial_freq", "_seed_freq", "_seed_vec", "_lacunarity", "_gain",
                 "_octaves", "_enabled")

    def __init__(self, *args, **kwargs):
        raise TypeError("No constructor defined for NoiseParams")

    @staticmethod
    def default_with_seed_py(seed) -> "NoiseParams":
        seed = to_float_array(seed, 3, "seed")
        self = object.__new__(NoiseParams)
        self._spatial_freq = np.full(3, 0.5, dtype=np.float32)
        self._seed_freq = np.full(3, 0.2, dtype=np.float32)
        self._seed_vec = np.asarray(seed, dtype=np.float32)
        self._lacunarity = np.float32(2.0)
        self._gain = np.float32(0.5)
        self._octaves = 4
        self._enabled = 1
        return self

    @staticmethod
    def none_py() -> "NoiseParams":
        self = NoiseParams.default_with_seed_py([0.0, 0.0, 0.0])
        self._enabled = 0
        return self

    @property
    def _is_enabled(self) -> bool:
        return self._enabled != 0

    def __repr__(self) -> str:
        return (f"NoiseParams(enabled={bool(self._enabled)}, octaves={self._octaves}, "
                f"seed={tuple(float(v) for v in self._seed_vec)})")


_F6 = np.float32((math.sqrt(7.0) - 1.0) / 6.0)
_G6 = np.float32((1.0 - 1.0 / math.sqrt(7.0)) / 6.0)
_HASH_MUL = tuple(np.uint32(v) for v in (0x8DA6B343, 0xD8163841, 0xCB1AB31F, 0x165667B1,
                                         0x9E3779B9, 0x85EBCA6B))
_GRAD_SALT = tuple(np.uint32(v) for v in (0x9E3779B9, 0x3C6EF372, 0xDA3E39CB, 0xBB67AE85,
                                          0x6A09E667, 0xA54FF53A))
_SHIFT15, _SHIFT16 = np.uint32(15), np.uint32(16)
_MIX1, _MIX2 = np.uint32(0x7FEB352D), np.uint32(0x846CA68B)
_U32_TO_UNIT = np.float32(1.0 / 4294967295.0)


def _mix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _SHIFT16)
    h = h * _MIX1
    h ^= h >> _SHIFT15
    h *= _MIX2
    h ^= h >> _SHIFT16
    return h


def simplex6(p: list) -> np.ndarray:
    """6-D simplex noise of six float32 coordinate columns (each shape (N,)), ×50 as the shader."""
    n = p[0].size
    skew = (p[0] + p[1] + p[2] + p[3] + p[4] + p[5]) * _F6
    base = [np.floor(c + skew).astype(np.int32) for c in p]
    unskew = (base[0] + base[1] + base[2] + base[3] + base[4] + base[5]).astype(np.float32) * _G6
    x0 = [c - b.astype(np.float32) + unskew for c, b in zip(p, base)]
    rank = [np.zeros(n, dtype=np.int8) for _ in range(6)]
    for a in range(6):
        for b in range(a + 1, 6):
            greater = x0[a] > x0[b]
            rank[a] += greater
            rank[b] += ~greater
    value = np.zeros(n, dtype=np.float32)
    for corner in range(7):
        offset = [r < corner for r in rank]
        shift = np.float32(corner) * _G6
        xk = [x - o + shift for x, o in zip(x0, offset)]
        t0 = np.float32(0.5) - (xk[0] * xk[0] + xk[1] * xk[1] + xk[2] * xk[2]
                                + xk[3] * xk[3] + xk[4] * xk[4] + xk[5] * xk[5])
        live = np.flatnonzero(t0 > 0)
        if live.size == 0:
            continue
        h = None
        for a in range(6):
            term = (base[a][live] + offset[a][live]).view(np.uint32) * _HASH_MUL[a]
            h = term if h is None else h ^ term
        h = _mix32(h)
        g = [_mix32(h ^ salt).astype(np.float32) * _U32_TO_UNIT * np.float32(2.0)
             - np.float32(1.0) for salt in _GRAD_SALT]
        norm2 = g[0] * g[0] + g[1] * g[1] + g[2] * g[2] + g[3] * g[3] + g[4] * g[4] + g[5] * g[5]
        inv = np.float32(1.0) / np.sqrt(np.maximum(norm2, np.float32(1e-6)))
        dot = sum(g[a] * xk[a][live] for a in range(6))
        k = t0[live] * t0[live]
        value[live] += k * k * dot * inv
    return value * np.float32(50.0)


def fbm(coords: np.ndarray, eye: np.ndarray, noise: NoiseParams) -> np.ndarray:
    """fBm of cells ``coords`` (N, 3) seen from ``eye``, as ``simplex6_fbm`` in the shader."""
    pos = np.asarray(coords, dtype=np.float32)
    seed = np.asarray(eye, dtype=np.float32)
    total = np.zeros(len(pos), dtype=np.float32)
    amp, freq = np.float32(1.0), np.float32(1.0)
    for _ in range(noise._octaves):
        cols = [pos[:, a] * (noise._spatial_freq[a] * freq) for a in range(3)]
        cols += [np.full(len(pos), seed[a] * (noise._seed_freq[a] * freq), dtype=np.float32)
                 for a in range(3)]
        total += amp * simplex6(cols)
        freq = np.float32(freq * noise._lacunarity)
        amp = np.float32(amp * noise._gain)
    return total


def displace(coords: np.ndarray, eye: np.ndarray, noise: NoiseParams | None) -> np.ndarray:
    """Cell coordinates after the observation noise (unchanged when noise is off)."""
    coords = np.asarray(coords, dtype=np.int32)
    if noise is None or not noise._is_enabled or len(coords) == 0:
        return coords
    pos = coords.astype(np.float32)
    eye = np.asarray(eye, dtype=np.float32)
    delta = pos - eye
    dist = np.sqrt((delta * delta).sum(axis=1))
    safe = np.where(dist > 0, dist, np.float32(1.0))
    amount = fbm(coords, eye, noise) * np.float32(0.4) * dist
    moved = pos + delta / safe[:, None] * amount[:, None]
    return np.rint(moved).astype(np.int32)


# =========================================================================================
# Ray casting (pure)
# =========================================================================================

@dataclass
class View:
    """Camera pose and projection in plain numbers (what ``observe`` needs)."""

    eye: np.ndarray        # (3,) float64
    forward: np.ndarray    # unit
    up: np.ndarray         # camera up as given (look_at re-orthogonalizes it)
    aspect: float = 1.4
    fov_vertical: float = 0.8
    max_distance: float = 50.0
    near_distance: float = 0.5

    def basis(self) -> tuple:
        f = self.forward / np.linalg.norm(self.forward)
        right = np.cross(f, self.up)
        right /= np.linalg.norm(right)
        return f, right, np.cross(right, f)

    def depth_range(self) -> tuple:
        near, far = self.near_distance, self.max_distance
        return 2.0 * far * near / (far + near), far


@dataclass
class Changeset:
    """What one observation changes in the filter world (voxelsim's WorldChangeset)."""

    insert_coords: np.ndarray  # (K, 3) int32, displaced coordinates of seen cells
    insert_bits: np.ndarray    # (K,) uint32, never empty bits
    remove_coords: np.ndarray  # (J, 3) int32, filter cells seen to be empty space


def frustum_mask(coords: np.ndarray, view: View, margin: float = _CUBE_RADIUS) -> np.ndarray:
    """Cells whose cube may touch the view frustum (a conservative sphere test)."""
    if len(coords) == 0:
        return np.zeros(0, dtype=bool)
    f, right, up = view.basis()
    near, far = view.depth_range()
    tan_y = math.tan(view.fov_vertical / 2.0)
    tan_x = tan_y * view.aspect
    rel = coords.astype(np.float32) - view.eye.astype(np.float32)
    basis = np.stack([f, right, up], axis=1).astype(np.float32)
    local = rel @ basis
    depth, x, y = local[:, 0], local[:, 1], local[:, 2]
    keep = (depth >= near - margin) & (depth <= far + margin)
    keep &= np.abs(x) <= depth * tan_x + margin * math.sqrt(1.0 + tan_x * tan_x)
    keep &= np.abs(y) <= depth * tan_y + margin * math.sqrt(1.0 + tan_y * tan_y)
    return keep


def _frustum_box(view: View) -> tuple:
    f, right, up = view.basis()
    near, far = view.depth_range()
    tan_y = math.tan(view.fov_vertical / 2.0)
    tan_x = tan_y * view.aspect
    corners = [view.eye + d * (f + sx * tan_x * right + sy * tan_y * up)
               for d in (near, far) for sx in (-1, 1) for sy in (-1, 1)]
    corners = np.array(corners)
    return np.floor(corners.min(axis=0)).astype(np.int64) - 1, \
        np.ceil(corners.max(axis=0)).astype(np.int64) + 1


def pixel_rays(view: View, width: int, height: int) -> np.ndarray:
    """Ray directions (H·W, 3), row-major from the top-left pixel, scaled so that moving
    ``t`` along a ray moves ``t`` in view depth (their forward component is 1)."""
    f, right, up = view.basis()
    tan_y = math.tan(view.fov_vertical / 2.0)
    tan_x = tan_y * view.aspect
    ndc_x = (np.arange(width) + 0.5) / width * 2.0 - 1.0
    ndc_y = 1.0 - (np.arange(height) + 0.5) / height * 2.0
    a = np.tile(ndc_x * tan_x, height)
    b = np.repeat(ndc_y * tan_y, width)
    return f[None, :] + a[:, None] * right[None, :] + b[:, None] * up[None, :]


def cast_rays(eye: np.ndarray, dirs: np.ndarray, t_min: float, t_max: float,
              lo: np.ndarray, occupied: np.ndarray, carvable: np.ndarray | None):
    """First occupied cell along each ray, and carvable cells passed before it.

    Cells are unit cubes centred on integer coordinates; ``occupied`` (int32, 0 = empty,
    else 1 + a scene index) and ``carvable`` (bool) are dense grids whose cell (0, 0, 0) is
    ``lo``. A cell counts only if the ray enters it at a depth in ``[t_min, t_max)``: the cube
    around the near point is not entered in view (its front face is clipped), as on the GPU.

    Returns (ray indices that hit, their scene indices, flat grid indices of carved cells).
    Vectorized Amanatides–Woo DDA: one numpy pass per cell boundary, finished rays dropped.
    """
    shape = np.array(occupied.shape, dtype=np.int64)
    box_lo = lo - 0.5
    box_hi = lo + shape - 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / dirs
        t_a = (box_lo[None, :] - eye[None, :]) * inv
        t_b = (box_hi[None, :] - eye[None, :]) * inv
    t_a = np.where(np.isnan(t_a), -np.inf, t_a)
    t_b = np.where(np.isnan(t_b), np.inf, t_b)
    t_in = np.minimum(t_a, t_b).max(axis=1)
    t_out = np.maximum(t_a, t_b).min(axis=1)
    start = np.maximum(t_in, t_min)
    end = np.minimum(t_out, t_max)
    rays = np.flatnonzero(start < end)
    hit_rays, hit_cells, carved = [], [], []
    if rays.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    d = dirs[rays]
    start, end = start[rays], end[rays]
    entered = start > t_min  # the first cell is entered in view only through the box face
    point = eye[None, :] + (start + 1e-9)[:, None] * d
    cell = np.floor(point + 0.5).astype(np.int64) - lo[None, :]
    cell = np.clip(cell, 0, shape[None, :] - 1)
    step = np.sign(d).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.abs(1.0 / d)
        boundary = cell + lo[None, :] + 0.5 * step - eye[None, :]
        t_next = np.where(step != 0, boundary / d, np.inf)
    strides = np.array([shape[1] * shape[2], shape[2], 1], dtype=np.int64)
    flat = cell @ strides
    cx, cy, cz = (cell[:, k].astype(np.int32) for k in range(3))
    tx, ty, tz = (t_next[:, k].copy() for k in range(3))
    dx, dy, dz = (delta[:, k].copy() for k in range(3))
    sx, sy, sz = (step[:, k].astype(np.int32) for k in range(3))
    occ = occupied.ravel()
    carve = carvable.ravel() if carvable is not None else None
    nx, ny, nz = (int(v) for v in shape)

    # The first cell: counts only when entered through the box face inside the depth range.
    def record(rays, flat, value, hit_now, candidates):
        """Keep the rays that hit (and the cell each hit) and the carvable cells passed."""
        if hit_now.any():
            hit_rays.append(rays[hit_now])
            hit_cells.append(value[hit_now] - 1)
        if carve is not None:
            cut = candidates & ~hit_now & carve[flat]
            if cut.any():
                carved.append(flat[cut])

    first = occ[flat]
    hit_now = entered & (first > 0)
    record(rays, flat, first, hit_now, entered)
    alive = ~hit_now
    while True:
        live = int(np.count_nonzero(alive))
        if live == 0:
            break
        if live < 0.75 * alive.size:  # drop finished rays once enough of them pile up
            keep = np.flatnonzero(alive)
            rays, end = rays[keep], end[keep]
            cx, cy, cz, tx, ty, tz = cx[keep], cy[keep], cz[keep], tx[keep], ty[keep], tz[keep]
            dx, dy, dz, sx, sy, sz = dx[keep], dy[keep], dz[keep], sx[keep], sy[keep], sz[keep]
            alive = np.ones(live, dtype=bool)
        # Cross the nearest cell boundary: the axis whose next crossing comes first.
        on_x = (tx <= ty) & (tx <= tz)
        on_y = ~on_x & (ty <= tz)
        on_z = ~(on_x | on_y)
        t_enter = np.minimum(np.minimum(tx, ty), tz)
        np.add(cx, sx, out=cx, where=on_x)
        np.add(cy, sy, out=cy, where=on_y)
        np.add(cz, sz, out=cz, where=on_z)
        np.add(tx, dx, out=tx, where=on_x)
        np.add(ty, dy, out=ty, where=on_y)
        np.add(tz, dz, out=tz, where=on_z)
        inside = alive & (t_enter < end)
        inside &= (cx >= 0) & (cx < nx) & (cy >= 0) & (cy < ny) & (cz >= 0) & (cz < nz)
        flat = (cx.astype(np.int64) * ny + cy) * nz + cz
        flat[~inside] = 0
        value = occ[flat]
        value[~inside] = 0
        hit_now = value > 0
        record(rays, flat, value, hit_now, inside)
        alive = inside & ~hit_now
    join = (lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.int64))
    return join(hit_rays), join(hit_cells), join(carved)


class ChunkedCells:
    """Cells grouped by 16³ chunk, so frustum culling tests chunks before cells.

    Built once per static world; ``in_view(view)`` returns the (coords, bits) of the cells
    whose cube may touch the frustum, exactly as ``frustum_mask`` on every cell would.
    """

    SIZE = 16

    def __init__(self, coords, bits):
        coords = np.asarray(coords, dtype=np.int32).reshape(-1, 3)
        bits = np.asarray(bits, dtype=np.uint32)
        chunk = np.floor_divide(coords, self.SIZE)
        keys = _keys(chunk)
        order = np.argsort(keys, kind="stable")
        self.coords, self.bits = coords[order], bits[order]
        _, self.starts, self.counts = np.unique(keys[order], return_index=True,
                                                return_counts=True)
        firsts = chunk[order][self.starts]
        self.centres = firsts * self.SIZE + (self.SIZE - 1) / 2.0
        # Sphere around a chunk's cubes: half its diagonal (in cells) plus one cube.
        self.radius = math.sqrt(3.0) * self.SIZE / 2.0

    def in_view(self, view: View) -> tuple:
        if len(self.counts) == 0:
            return self.coords, self.bits
        near = frustum_mask(self.centres, view, margin=self.radius)
        starts, counts = self.starts[near], self.counts[near]
        total = int(counts.sum())
        offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts)
        index = np.arange(total) + offsets
        coords, bits = self.coords[index], self.bits[index]
        keep = frustum_mask(coords, view)
        return coords[keep], bits[keep]


def observe(static_coords, static_bits, view: View, size: tuple, noise: NoiseParams | None,
            dynamic_coords=None, dynamic_bits=None, filter_coords=None,
            static_chunks: ChunkedCells | None = None) -> Changeset:
    """One observation: what a ``size = (w, h)`` camera sees of the world and what it carves.

    ``static_*`` is the world uploaded at construction, ``dynamic_*`` the per-update cells drawn
    with it, ``filter_coords`` the filter world's cells (candidates for removal);
    ``static_chunks`` (the static cells, chunked) makes culling a large world cheap.
    """
    empty3 = np.zeros((0, 3), dtype=np.int32)
    width, height = int(size[0]), int(size[1])
    static_coords = np.asarray(static_coords, dtype=np.int32).reshape(-1, 3)
    static_bits = np.asarray(static_bits, dtype=np.uint32)
    eye32 = view.eye.astype(np.float32)

    if static_chunks is not None:
        culled_coords, culled_bits = static_chunks.in_view(view)
    else:
        seen = frustum_mask(static_coords, view)
        culled_coords, culled_bits = static_coords[seen], static_bits[seen]
    scene_coords = [displace(culled_coords, eye32, noise)]
    scene_bits = [culled_bits]
    if dynamic_coords is not None and len(dynamic_coords):
        scene_coords.append(displace(np.asarray(dynamic_coords, np.int32).reshape(-1, 3),
                                     eye32, noise))
        scene_bits.append(np.asarray(dynamic_bits, dtype=np.uint32))
    scene_coords = np.concatenate(scene_coords)
    scene_bits = np.concatenate(scene_bits)
    scene_keep = frustum_mask(scene_coords, view)
    scene_coords, scene_bits = scene_coords[scene_keep], scene_bits[scene_keep]

    filter_coords = (np.asarray(filter_coords, dtype=np.int32).reshape(-1, 3)
                     if filter_coords is not None else empty3)
    filter_coords = filter_coords[frustum_mask(filter_coords, view)]

    nothing = Changeset(empty3, np.zeros(0, np.uint32), empty3)
    if width == 0 or height == 0 or (len(scene_coords) == 0 and len(filter_coords) == 0):
        return nothing
    both = np.concatenate([scene_coords, filter_coords]).astype(np.int64)
    box_lo, box_hi = _frustum_box(view)
    lo = np.maximum(both.min(axis=0), box_lo)
    hi = np.minimum(both.max(axis=0), box_hi)
    if (hi < lo).any():
        return nothing
    shape = tuple(int(v) for v in hi - lo + 1)

    occupied = np.zeros(shape, dtype=np.int32)
    rel = scene_coords.astype(np.int64) - lo
    inside = ((rel >= 0) & (rel < np.array(shape))).all(axis=1)
    rel_in = rel[inside]
    occupied[rel_in[:, 0], rel_in[:, 1], rel_in[:, 2]] = np.flatnonzero(inside) + 1
    carvable = None
    if len(filter_coords):
        carvable = np.zeros(shape, dtype=bool)
        rel = filter_coords.astype(np.int64) - lo
        inside = ((rel >= 0) & (rel < np.array(shape))).all(axis=1)
        rel = rel[inside]
        carvable[rel[:, 0], rel[:, 1], rel[:, 2]] = True

    near, far = view.depth_range()
    dirs = pixel_rays(view, width, height)
    _, cells, carved = cast_rays(view.eye.astype(np.float64), dirs, near, far,
                                 lo.astype(np.int64), occupied, carvable)
    cells = np.unique(cells)
    bits = scene_bits[cells]
    nonempty = bits != 0
    insert_coords = scene_coords[cells][nonempty]
    insert_bits = bits[nonempty]
    if len(insert_coords):
        insert_coords, first = np.unique(insert_coords, axis=0, return_index=True)
        insert_bits = insert_bits[first]
    carved = np.unique(carved)
    remove = np.stack(np.unravel_index(carved, shape), axis=1).astype(np.int64) + lo
    return Changeset(insert_coords.astype(np.int32), insert_bits.astype(np.uint32),
                     remove.astype(np.int32).reshape(-1, 3))


# =========================================================================================
# FilterWorld: the agent's belief, stored as coordinate/bits arrays
# =========================================================================================

_KEY_OFFSET = 1 << 20  # coordinates are packed 21 bits per axis for set operations


def _keys(coords: np.ndarray) -> np.ndarray:
    c = np.asarray(coords, dtype=np.int64).reshape(-1, 3) + _KEY_OFFSET
    mask = (1 << 21) - 1
    return ((c[:, 0] & mask) << 42) | ((c[:, 1] & mask) << 21) | (c[:, 2] & mask)


def apply_changeset(coords: np.ndarray, bits: np.ndarray, change: Changeset) -> tuple:
    """(coords, bits) after inserting ``change``'s cells and then removing its carved ones."""
    all_coords = np.concatenate([coords, change.insert_coords]).astype(np.int32)
    all_bits = np.concatenate([bits, change.insert_bits]).astype(np.uint32)
    keys = _keys(all_coords)
    # Later entries (the insertions) win: keep the last occurrence of every key.
    _, last = np.unique(keys[::-1], return_index=True)
    keep = np.sort(len(keys) - 1 - last)
    all_coords, all_bits, keys = all_coords[keep], all_bits[keep], keys[keep]
    if len(change.remove_coords):
        stay = ~np.isin(keys, _keys(change.remove_coords))
        all_coords, all_bits = all_coords[stay], all_bits[stay]
    return all_coords, all_bits


class FilterWorld(SealedInstances):
    """What the agent has seen: cells inserted by vision updates, removed when seen empty."""

    def __init__(self):
        # Guards the cells, the pending frames and the timestamp: the vision thread writes
        # them while the simulation loop reads them.
        self._lock = threading.Lock()
        self._coords = np.zeros((0, 3), dtype=np.int32)
        self._bits = np.zeros(0, dtype=np.uint32)
        self._frames: list[float] = []      # timestamps of updates queued, not yet applied
        self._timestamp: float | None = None

    # --- state ------------------------------------------------------------------------
    def is_updating_py(self, timestamp) -> bool:
        timestamp = to_float(timestamp, "timestamp")
        with self._lock:
            return timestamp in self._frames

    def timestamp_py(self):
        with self._lock:
            return self._timestamp

    def _arrays(self) -> tuple:
        """(coords int32 (N, 3), bits uint32 (N,)): a snapshot, never mutated afterwards."""
        with self._lock:
            return self._coords, self._bits

    def _begin(self, timestamp: float) -> None:
        with self._lock:
            self._frames.append(timestamp)

    def _apply(self, change: Changeset, timestamp: float) -> None:
        with self._lock:
            coords, bits = apply_changeset(self._coords, self._bits, change)
            coords.flags.writeable = bits.flags.writeable = False  # snapshots stay valid
            self._coords, self._bits = coords, bits
            self._frames = [t for t in self._frames if t != timestamp]
            self._timestamp = timestamp

    def _abandon(self, timestamp: float) -> None:
        with self._lock:
            self._frames = [t for t in self._frames if t != timestamp]

    # --- renderer ---------------------------------------------------------------------
    def _pov_payload(self, agent_id: int, proj, orientation) -> bytes:
        coords, bits = self._arrays()
        return wire.encode_pov((coords, bits), agent_id, proj, orientation)

    def send_pov_py(self, client, stream_idx, agent_id, proj, orientation):
        from bgen.sim.embedded.network import RendererClient, _ClientError
        client = to_instance(client, RendererClient, "client")
        stream_idx = to_int(stream_idx, "stream_idx", "usize")
        agent_id = to_int(agent_id, "agent_id", "usize")
        proj = to_instance(proj, _camera_class("CameraProjection"), "proj")
        orientation = to_instance(orientation, _camera_class("CameraOrientation"), "orientation")
        payload = self._pov_payload(agent_id, proj, orientation)
        try:
            client._send_pov_payload(stream_idx, payload)
        except _ClientError as error:
            raise Exception(f"Could not send pov: {error}") from None

    def send_pov_async_py(self, client, stream_idx, agent_id, proj, orientation):
        from bgen.sim.embedded.network import AsyncRendererClient
        client = to_instance(client, AsyncRendererClient, "client")
        stream_idx = to_int(stream_idx, "stream_idx", "usize")
        agent_id = to_int(agent_id, "agent_id", "usize")
        proj = to_instance(proj, _camera_class("CameraProjection"), "proj")
        orientation = to_instance(orientation, _camera_class("CameraOrientation"), "orientation")
        coords, bits = self._arrays()  # snapshot now, as voxelsim clones the world here
        proj_data, quat = wire.projection_data(proj), wire.orientation_quat(orientation)
        client._send_pov_later(
            stream_idx, lambda: wire.encode_pov((coords, bits), agent_id, proj_data, quat))

    # --- reading ------------------------------------------------------------------------
    def dense_snapshot_py(self, centre, half_dims):
        from bgen.sim.embedded.world import DenseSnapshot, VoxelGrid, dense_bits, snapshot_bounds
        centre = to_int_array(centre, 3, "centre")
        half_dims = to_int_array(half_dims, 3, "half_dims")
        low, high = snapshot_bounds(centre, half_dims)
        coords, bits = self._arrays()
        grid = VoxelGrid._from_arrays(coords, bits)  # array-backed: dense_bits scatters
        return DenseSnapshot._of(centre, half_dims, dense_bits(grid, low, high))

    def as_numpy(self):
        coords, bits = self._arrays()
        values = np.where(bits & FILLED, 1.0, np.where(bits & SPARSE, 0.5, 0.0))
        return coords.astype(np.float32).reshape(-1, 3), values.astype(np.float32)

    def __repr__(self) -> str:
        return f"FilterWorld(cells={len(self._bits)}, timestamp={self._timestamp})"


# =========================================================================================
# AgentVisionRenderer
# =========================================================================================

class WorldChangeset(Sealed):
    """One finished observation, handed to ``render_changeset_py``'s callback (not applied)."""

    __slots__ = ("_change", "_timestamp", "_cam_pos", "_cam_dir")

    def __init__(self, *args, **kwargs):
        raise TypeError("No constructor defined for WorldChangeset")

    @classmethod
    def _of(cls, change: Changeset, timestamp: float, view: "View") -> "WorldChangeset":
        self = object.__new__(cls)
        self._change, self._timestamp = change, timestamp
        # voxelsim recovers the eye from the f32 view matrix and the direction from its rows.
        self._cam_pos = [float(v) for v in view.eye.astype(np.float32)]
        self._cam_dir = [float(v) for v in view.basis()[0]]
        return self

    def timestamp_py(self) -> float:
        return self._timestamp

    def update_filter_world_py(self, filter_world) -> None:
        filter_world = to_instance(filter_world, FilterWorld, "filter_world")
        filter_world._apply(self._change, self._timestamp)

    def camera_pos_py(self) -> list:
        return list(self._cam_pos)

    def camera_dir_py(self) -> list:
        return list(self._cam_dir)

    def __repr__(self) -> str:
        return (f"WorldChangeset(timestamp={self._timestamp}, "
                f"insert={len(self._change.insert_bits)}, "
                f"remove={len(self._change.remove_coords)})")


_STOP = object()  # tells a render thread its renderer is gone


def _render_loop(jobs: queue.Queue, chunks: "ChunkedCells", size: tuple,
                 noise: NoiseParams) -> None:
    """The render thread: observe, then hand the result on; one job at a time, in order."""
    while True:
        job = jobs.get()
        if job is _STOP:
            return
        view, dyn_coords, dyn_bits, filter_world, timestamp, deliver = job
        try:
            filter_coords, _ = filter_world._arrays()
            change = observe(chunks.coords, chunks.bits, view, size, noise, dyn_coords,
                             dyn_bits, filter_coords, chunks)
        except Exception:
            filter_world._abandon(timestamp)  # voxelsim sends nothing when a render fails
            continue
        try:
            deliver(change, view, filter_world, timestamp)
        except Exception:
            pass  # voxelsim discards the callback's error


def _apply_then_call(callback):
    def deliver(change, view, filter_world, timestamp):
        filter_world._apply(change, timestamp)
        callback(filter_world, timestamp)
    return deliver


def _hand_over(callback):
    def deliver(change, view, filter_world, timestamp):
        callback(WorldChangeset._of(change, timestamp, view))
    return deliver


class AgentVisionRenderer(SealedInstances):
    """Renders the agent's view into a FilterWorld on a background thread.

    The thread starts with the first update and ends when the renderer is garbage-collected
    (voxelsim's render thread ends when its channel's sender is dropped).
    """

    _ARGS = ("camera", "proj", "filter_world", "dynamic_world", "timestamp", "callback")

    def __init__(self, world, view_size, noise):
        world = to_instance(world, _world_class(), "world")
        width, height = to_int_array(view_size, 2, "view_size", "u32")
        noise = to_instance(noise, NoiseParams, "noise")
        coords, bits = world._arrays()  # immutable snapshots: uploaded once, as voxelsim does
        self._coords = np.asarray(coords, dtype=np.int32).reshape(-1, 3)
        self._bits = np.asarray(bits, dtype=np.uint32)
        self._chunks = ChunkedCells(self._coords, self._bits)
        self._size = (width, height)
        self._noise = noise
        # Jobs for the render thread, bounded like voxelsim's sync_channel(1000).
        self._jobs: queue.Queue = queue.Queue(maxsize=1000)
        # The render thread (daemon), started on first use; it does not reference self.
        self._thread: threading.Thread | None = None

    def _queue(self, method: str, args: tuple, kwargs: dict, deliver_with) -> None:
        bound = bind_arguments(f"AgentVisionRenderer.{method}()", self._ARGS, args, kwargs)
        camera = to_instance(bound["camera"], _camera_class("CameraView"), "camera")
        proj = to_instance(bound["proj"], _camera_class("CameraProjection"), "proj")
        filter_world = to_instance(bound["filter_world"], FilterWorld, "filter_world")
        dynamic = to_instance(bound["dynamic_world"], _world_class(), "dynamic_world")
        timestamp = to_float(bound["timestamp"], "timestamp")
        view = view_of(camera, proj)
        dyn_coords, dyn_bits = dynamic._arrays()
        if self._thread is None:
            self._thread = threading.Thread(
                target=_render_loop, name="agent-vision", daemon=True,
                args=(self._jobs, self._chunks, self._size, self._noise))
            self._thread.start()
        filter_world._begin(timestamp)
        self._jobs.put((view, dyn_coords, dyn_bits, filter_world, timestamp,
                        deliver_with(bound["callback"])))

    def update_filter_world_py(self, *args, **kwargs):
        """(camera, proj, filter_world, dynamic_world, timestamp, callback): observe in the
        background, apply to ``filter_world``, then ``callback(filter_world, timestamp)``."""
        self._queue("update_filter_world_py", args, kwargs, _apply_then_call)

    def render_changeset_py(self, *args, **kwargs):
        """Same arguments; ``callback(changeset)`` gets a WorldChangeset to apply yourself."""
        self._queue("render_changeset_py", args, kwargs, _hand_over)

    def _observe_now(self, camera, proj, filter_world=None, dynamic_world=None) -> Changeset:
        """Synchronous observation (tests, benchmarks): the changeset, nothing applied."""
        view = view_of(camera, proj)
        dyn = dynamic_world._arrays() if dynamic_world is not None else (None, None)
        filt = filter_world._arrays()[0] if filter_world is not None else None
        return observe(self._coords, self._bits, view, self._size, self._noise,
                       dyn[0], dyn[1], filt, self._chunks)

    def __del__(self):
        if getattr(self, "_thread", None) is not None:
            try:
                self._jobs.put_nowait(_STOP)
            except queue.Full:
                pass

    def __repr__(self) -> str:
        return f"AgentVisionRenderer(cells={len(self._bits)}, view_size={list(self._size)})"


# --- adapters to the camera/world classes ---------------------------------------------

def _world_class():
    from bgen.sim.embedded.world import VoxelGrid
    return VoxelGrid


def _camera_class(name: str):
    from bgen.sim.embedded import camera
    return getattr(camera, name)


def view_of(camera, proj) -> View:
    """A View from an embedded CameraView and CameraProjection."""
    pos, forward, up = camera._pos, camera._forward, camera._up
    return View(eye=np.asarray(pos, dtype=np.float64), forward=np.asarray(forward, np.float64),
                up=np.asarray(up, dtype=np.float64), aspect=float(proj.aspect),
                fov_vertical=float(proj.fov_vertical), max_distance=float(proj.max_distance),
                near_distance=float(proj.near_distance))
