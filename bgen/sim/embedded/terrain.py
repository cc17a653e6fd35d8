"""TerrainConfig and TerrainGenerator: seeded heightfield + forest (voxelsim-simulator/src/terrain.rs).

What the reference generates, and so do we, in its own frame (x, y up, z), then flipped into
the world frame ``(x, z, -y)`` — world z is *negative* up, the height is the second terrain axis:

* ground: height ``round(n * max_terrain_height)`` per column, where ``n`` mixes two gradient
  noise fields (``0.8 * noise(x/s, z/s)`` + ``0.2 * noise(x/4s, z/4s)``, mapped to [0, 1]) and
  every ``n`` within ``flat_band`` of 0.5 is flattened to exactly 0.5. Each column is filled
  GROUND|FILLED from ``base_thickness`` below its top, and gaps to its 8 neighbours are closed
  (a column reaches up to its highest neighbour);
* forest: on every second column, where a third noise field marks a grove (density >= 0.7),
  at most 50 trees at least 8 cells apart, of four kinds (oak, pine, birch, willow) with the
  reference's proportions; trunks and canopy leaves are FILLED, branches, sub-branches and
  wispy leaves are SPARSE or FILLED at random (SPARSE preferred);
* every cell lies within ``0..=size`` on each axis (inclusive, as in the reference).

Known differences: the noise is our own seeded gradient noise (numpy), not the ``noise``
crate's Perlin, and the random streams are numpy's, not ``rand``'s StdRng; so worlds have the
reference's character, value ranges and cell kinds, but not its exact cells for a seed.
Out-of-bounds tree cells are dropped at the end rather than as they are drawn.
Generation is deterministic per seed (explicit ``numpy.random.Generator``; no global RNG).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from bgen.sim.embedded.convert import to_instance, to_int
from bgen.sim.embedded.world import FILLED, GROUND, SPARSE, VoxelGrid
from bgen.sim.embedded.convert import Sealed

# --- reference constants ---------------------------------------------------------------------
DEFAULT_SIZE = (100, 30, 100)
DEFAULT_HEIGHT_SCALE = 100.0
DEFAULT_FLAT_BAND = 0.1
DEFAULT_MAX_TERRAIN_HEIGHT = 32
DEFAULT_FOREST_SCALE = 30.0
DEFAULT_MAX_FOREST_HEIGHT = 20
DEFAULT_SEED = 100
DEFAULT_BASE_THICKNESS = 3

MAX_TREES = 50
MIN_TREE_DISTANCE_SQ = 64
TREE_DENSITY_THRESHOLD = 0.7
TREE_GRID_STEP = 2
TREE_KINDS = ("oak", "pine", "birch", "willow")
_TREE_BLOCK = 8   # side of the blocks placed trees are filed by: sqrt(MIN_TREE_DISTANCE_SQ)

# Independent random streams derived from the seed (SeedSequence entropy tails).
_STREAM_NOISE, _STREAM_SCATTER, _STREAM_TREE = 0x6E6F6973, 0x73636174, 0x74726565
# Beyond this many columns the world would not fit in memory anyway.
_MAX_COLUMNS = 1 << 26
_U32 = 0xFFFF_FFFF


class TerrainConfig(Sealed):
    """Terrain parameters; ``TerrainConfig(seed)`` or ``default_py()`` (seed 100).

    voxelsim binds no field accessors: fields are reachable only through the setters below.
    Internally: ``_size`` (x, y=height, z) and the other reference fields, same defaults.
    """

    __slots__ = ("_size", "_height_scale", "_flat_band", "_max_terrain_height",
                 "_forest_scale", "_max_forest_height", "_seed", "_base_thickness")

    def __init__(self, seed):
        seed = to_int(seed, "seed", "u32")
        self._size = DEFAULT_SIZE
        self._height_scale = DEFAULT_HEIGHT_SCALE
        self._flat_band = DEFAULT_FLAT_BAND
        self._max_terrain_height = DEFAULT_MAX_TERRAIN_HEIGHT
        self._forest_scale = DEFAULT_FOREST_SCALE
        self._max_forest_height = DEFAULT_MAX_FOREST_HEIGHT
        self._seed = seed
        self._base_thickness = DEFAULT_BASE_THICKNESS

    @staticmethod
    def default_py() -> "TerrainConfig":
        return TerrainConfig(DEFAULT_SEED)

    def set_seed_py(self, seed) -> None:
        self._seed = to_int(seed, "seed", "u32")

    def get_seed_py(self) -> int:
        return self._seed

    def set_world_size_py(self, sizev) -> None:
        """Cube world: every axis ``max(sizev, 1)``."""
        side = max(to_int(sizev, "sizev", "i32"), 1)
        self._size = (side, side, side)

    def set_world_dimensions_py(self, x, y, z) -> None:
        """Per-axis size, each clamped to >= 1; ``y`` is the height axis of the terrain frame."""
        x = to_int(x, "x", "i32")
        y = to_int(y, "y", "i32")
        z = to_int(z, "z", "i32")
        self._size = (max(x, 1), max(y, 1), max(z, 1))

    def __repr__(self) -> str:
        return f"TerrainConfig(seed={self._seed}, size={list(self._size)})"


class TerrainGenerator(Sealed):
    """Accumulates terrain cells; ``generate_world_py()`` returns them as a world (z up = -y).

    Calling ``generate_terrain_py`` again adds to (ORs into) the cells already generated,
    as in the reference.
    """

    __slots__ = ("_coords", "_bits")

    def __init__(self):
        self._coords = np.zeros((0, 3), dtype=np.int64)  # terrain frame (x, y up, z)
        self._bits = np.zeros(0, dtype=np.uint32)

    def generate_terrain_py(self, cfg) -> None:
        cfg = to_instance(cfg, TerrainConfig, "cfg")
        coords, bits = generate_cells(cfg)
        if len(self._bits):
            coords, bits = merge_cells(np.concatenate([self._coords, coords]),
                                       np.concatenate([self._bits, bits]))
        self._coords, self._bits = coords, bits

    def generate_world_py(self) -> VoxelGrid:
        c = self._coords
        world = np.stack([c[:, 0], c[:, 2], -c[:, 1]], axis=1)
        return VoxelGrid._from_arrays(world, self._bits)


# --- noise -----------------------------------------------------------------------------------
_GRADIENTS = np.array([
    (1, 1, 0), (-1, 1, 0), (1, -1, 0), (-1, -1, 0), (1, 0, 1), (-1, 0, 1), (1, 0, -1),
    (-1, 0, -1), (0, 1, 1), (0, -1, 1), (0, 1, -1), (0, -1, -1), (1, 1, 0), (0, -1, 1),
    (-1, 1, 0), (0, -1, -1)], dtype=np.float64)
# Brings the gradient noise's extremes to about ±1, the range voxelsim's Perlin has.
_NOISE_GAIN = 1.0 / math.sqrt(0.75)


def _rng(*entropy: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(entropy))))


def _fade(t: np.ndarray) -> np.ndarray:
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def gradient_noise(seed: int, x: np.ndarray, y: np.ndarray, z: float) -> np.ndarray:
    """3-D gradient (Perlin-style) noise at points ``(x, y, z)``, in [-1, 1], seeded."""
    perm = _rng(seed & _U32, _STREAM_NOISE).permutation(256)
    perm = np.concatenate([perm, perm])
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    z = np.full(x.shape, float(z))
    xi, yi, zi = np.floor(x), np.floor(y), np.floor(z)
    xf, yf, zf = x - xi, y - yi, z - zi
    xi, yi, zi = (xi.astype(np.int64) & 255, yi.astype(np.int64) & 255,
                  zi.astype(np.int64) & 255)
    u, v, w = _fade(xf), _fade(yf), _fade(zf)

    def corner(dx, dy, dz):
        h = perm[perm[perm[xi + dx] + yi + dy] + zi + dz] & 15
        g = _GRADIENTS[h]
        return g[..., 0] * (xf - dx) + g[..., 1] * (yf - dy) + g[..., 2] * (zf - dz)

    def lerp(t, a, b):
        return a + t * (b - a)

    x00 = lerp(u, corner(0, 0, 0), corner(1, 0, 0))
    x10 = lerp(u, corner(0, 1, 0), corner(1, 1, 0))
    x01 = lerp(u, corner(0, 0, 1), corner(1, 0, 1))
    x11 = lerp(u, corner(0, 1, 1), corner(1, 1, 1))
    value = lerp(w, lerp(v, x00, x10), lerp(v, x01, x11))
    return np.clip(value * _NOISE_GAIN, -1.0, 1.0)


def _round_half_away(values: np.ndarray) -> np.ndarray:
    return np.where(values >= 0, np.floor(values + 0.5), np.ceil(values - 0.5))


# --- ground ----------------------------------------------------------------------------------
def height_map(cfg: TerrainConfig) -> np.ndarray:
    """Surface height of every column, shape ``(size.x + 1, size.z + 1)``, in 0..max height."""
    size_x, _, size_z = cfg._size
    if (size_x + 1) * (size_z + 1) > _MAX_COLUMNS:
        raise MemoryError(f"terrain of {(size_x + 1) * (size_z + 1)} columns exceeds limit "
                          f"of {_MAX_COLUMNS}")
    gx, gz = np.meshgrid(np.arange(size_x + 1, dtype=np.float64),
                         np.arange(size_z + 1, dtype=np.float64), indexing="ij")
    scale = cfg._height_scale
    a = gradient_noise(cfg._seed + 1, gx / scale, gz / scale, 0.0)
    b = gradient_noise(cfg._seed, gx / (scale * 4.0), gz / (scale * 4.0), 1.0)
    n = ((a * 0.8 + b * 0.2) + 1.0) * 0.5
    band = cfg._flat_band
    n = np.where((n >= 0.5 - band) & (n <= 0.5 + band), 0.5, n)
    return _round_half_away(np.clip(n, 0.0, 1.0) * cfg._max_terrain_height).astype(np.int64)


def ground_cells(cfg: TerrainConfig, heights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GROUND|FILLED cells: each column from ``base_thickness`` under its top up to the top of
    its highest 8-neighbour (closing the gaps between neighbouring heights), within bounds."""
    _, size_y, _ = cfg._size
    big = np.iinfo(np.int64).max // 4
    low_pad = np.pad(heights, 1, constant_values=big)
    high_pad = np.pad(heights, 1, constant_values=-big)
    nx, nz = heights.shape
    n_min = np.full(heights.shape, big)
    n_max = np.full(heights.shape, -big)
    for dx in (-1, 0, 1):
        for dz in (-1, 0, 1):
            if dx == 0 and dz == 0:
                continue
            n_min = np.minimum(n_min, low_pad[1 + dx:1 + dx + nx, 1 + dz:1 + dz + nz])
            n_max = np.maximum(n_max, high_pad[1 + dx:1 + dx + nx, 1 + dz:1 + dz + nz])
    has_neighbour = n_max > -big
    gap_low = np.where(has_neighbour, np.minimum(heights, n_min), big)
    gap_high = np.where(has_neighbour, np.maximum(heights, n_max), -big)
    thickness = cfg._base_thickness
    base_low = np.maximum(heights - thickness + 1, 0) if thickness >= 1 else np.full_like(heights, big)
    base_high = heights if thickness >= 1 else np.full_like(heights, -big)
    # Both spans contain the column's own height when they are not empty, so their union
    # is one span.
    low = np.maximum(np.minimum(base_low, gap_low), 0)
    high = np.minimum(np.maximum(base_high, gap_high), size_y)
    counts = np.maximum(high - low + 1, 0).ravel()
    xs, zs = np.meshgrid(np.arange(nx), np.arange(nz), indexing="ij")
    col_x = np.repeat(xs.ravel(), counts)
    col_z = np.repeat(zs.ravel(), counts)
    starts = np.repeat(low.ravel(), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    coords = np.stack([col_x, starts + offsets, col_z], axis=1).astype(np.int64)
    return coords, np.full(len(coords), GROUND | FILLED, dtype=np.uint32)


# --- trees -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TreeParams:
    kind: str
    height: int
    trunk_radius: int
    canopy_radius: int
    canopy_height: int
    trunk_taper: float
    branch_layers: int
    branch_length: int
    leaf_density: float


def tree_params(kind: str, base_height: int, rng: np.random.Generator) -> TreeParams:
    """The reference's per-kind proportions, with a random height factor in [0.6, 1.4)."""
    h = int((base_height + 2) * (0.6 + rng.random() * 0.8))
    if kind == "oak":
        return TreeParams(kind, h, 2, int(h * 0.3), int(h * 0.7), 0.3, h // 3, int(h * 0.4), 0.7)
    if kind == "pine":
        return TreeParams(kind, h, 1, int(h * 0.2), int(h * 0.8), 0.5, h // 2,
                          max(int(h * 0.3), 2), 0.85)
    if kind == "birch":
        return TreeParams(kind, int(h * 1.2), 1, int(h * 0.1), int(h * 0.3), 0.2, h // 4,
                          max(int(h * 0.3), 3), 0.6)
    return TreeParams(kind, int(h * 0.8), 2, int(h * 0.4), int(h * 0.6), 0.2, h // 3,
                      int(h * 0.5), 0.5)


def place_trees(cfg: TerrainConfig, heights: np.ndarray) -> list:
    """``[(x, z, TreeParams)]``: grove columns scanned x-major on a 2-cell grid, as the reference."""
    size_x, size_y, size_z = cfg._size
    xs = np.arange(0, size_x + 1, TREE_GRID_STEP)
    zs = np.arange(0, size_z + 1, TREE_GRID_STEP)
    gx, gz = np.meshgrid(xs, zs, indexing="ij")
    density = (gradient_noise(cfg._seed + 2, gx / cfg._forest_scale, gz / cfg._forest_scale,
                              0.0) + 1.0) * 0.5
    rng = _rng(cfg._seed & _U32, _STREAM_SCATTER)
    placed: list = []
    # Placed trees by 8 × 8 block: a tree closer than 8 cells lies in one of the 9 blocks
    # around a candidate's own, so only those are searched.
    blocks: dict = {}
    for i, j in zip(*np.nonzero(density >= TREE_DENSITY_THRESHOLD)):
        if len(placed) >= MAX_TREES:
            break
        x, z, d = int(xs[i]), int(zs[j]), float(density[i, j])
        bx, bz = x // _TREE_BLOCK, z // _TREE_BLOCK
        if any((x - px) ** 2 + (z - pz) ** 2 < MIN_TREE_DISTANCE_SQ
               for nx in (bx - 1, bx, bx + 1) for nz in (bz - 1, bz, bz + 1)
               for px, pz in blocks.get((nx, nz), ())):
            continue
        kind = TREE_KINDS[int(rng.integers(len(TREE_KINDS)))]
        scale = 0.8 + (d - TREE_DENSITY_THRESHOLD) / (1.0 - TREE_DENSITY_THRESHOLD) * 0.4
        base_height = int(_round_half_away(np.float64(cfg._max_forest_height * scale)))
        params = tree_params(kind, base_height, rng)
        ground = int(heights[x, z])
        canopy_bottom = ground + int(params.height * 0.5)
        if canopy_bottom + params.canopy_height >= size_y or canopy_bottom <= ground:
            continue
        placed.append((x, z, params))
        blocks.setdefault((bx, bz), []).append((x, z))
    return placed


class _Cells:
    """Collects (x, y, z, bits) in the terrain frame; scalars or numpy batches.

    Batches are kept as they come (four 1-D arrays, or a scalar for the bits) and joined once
    in ``arrays()``, so a tree of a few hundred stamps costs one concatenation per axis.
    """

    def __init__(self):
        self.points: list = []
        self.batches: list = []

    def add(self, x: int, y: int, z: int, bits: int) -> None:
        self.points.append((x, y, z, bits))

    def add_many(self, xs, ys, zs, bits) -> None:
        if len(xs):
            self.batches.append((xs, ys, zs, bits))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        columns: list = [[], [], [], []]
        for batch in self.batches:
            n = len(batch[0])
            for axis, values in enumerate(batch):
                columns[axis].append(values if isinstance(values, np.ndarray)
                                     else np.full(n, values, dtype=np.int64))
        if self.points:
            table = np.array(self.points, dtype=np.int64)
            for axis in range(4):
                columns[axis].append(table[:, axis])
        if not columns[0]:
            return np.zeros((0, 3), np.int64), np.zeros(0, np.uint32)
        coords = np.stack([np.concatenate(columns[axis]) for axis in range(3)], axis=1)
        return coords, np.concatenate(columns[3]).astype(np.uint32)


_RAW_BLOCK = 2048                     # raw outputs fetched from the bit generator at a time
_DOUBLE_UNIT = 1.0 / 9007199254740992.0   # 2**-53: numpy's next_double scale
_U32_MASK = 0xFFFF_FFFF


class _Draws:
    """A numpy ``Generator``'s scalar draws, replayed in plain Python, value for value.

    Tree stamping makes tens of thousands of scalar draws, and each numpy scalar call costs
    about a microsecond of argument handling. This reads the bit generator's raw 64-bit outputs
    in blocks and applies numpy's own rules (numpy/random/src/distributions): ``random()`` is
    ``(raw >> 11) * 2**-53``; ``random(n)`` is n of those; ``uniform(a, b)`` is
    ``a + (b - a) * random()``; ``integers(low, high)`` (high exclusive, range below 2**32) is
    Lemire's bounded draw on 32-bit halves, the upper half of a raw kept for the next integer
    draw as PCG64's ``next_uint32`` keeps it (a range of one value draws nothing). The
    generator must be fresh and used only through this object; the golden cell digests in
    ``tests/test_sim_terrain.py`` hold it to numpy's values.
    """

    __slots__ = ("_bitgen", "_raws", "_pos", "_half")

    def __init__(self, rng: np.random.Generator):
        self._bitgen = rng.bit_generator
        self._raws: list = []
        self._pos = 0
        self._half: int | None = None   # the kept upper 32 bits, or None

    def _next64(self) -> int:
        pos = self._pos
        if pos == len(self._raws):
            self._raws, pos = self._bitgen.random_raw(_RAW_BLOCK).tolist(), 0
        self._pos = pos + 1
        return self._raws[pos]

    def _next32(self) -> int:
        half = self._half
        if half is not None:
            self._half = None
            return half
        raw = self._next64()
        self._half = raw >> 32
        return raw & _U32_MASK

    def random(self, size: int | None = None):
        if size is None:
            return (self._next64() >> 11) * _DOUBLE_UNIT
        raws: list = []
        while len(raws) < size:
            if self._pos == len(self._raws):
                self._raws, self._pos = self._bitgen.random_raw(_RAW_BLOCK).tolist(), 0
            count = min(size - len(raws), len(self._raws) - self._pos)
            raws += self._raws[self._pos:self._pos + count]
            self._pos += count
        return (np.array(raws, dtype=np.uint64) >> np.uint64(11)) * _DOUBLE_UNIT

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * ((self._next64() >> 11) * _DOUBLE_UNIT)

    def integers(self, low: int, high: int) -> int:
        span = high - low
        if span <= 0:
            raise ValueError("high <= low")
        if span == 1:
            return low
        if span > _U32_MASK:
            raise ValueError(f"range {span} needs 64-bit draws, which this does not replay")
        m = self._next32() * span
        leftover = m & _U32_MASK
        if leftover < span:
            threshold = (_U32_MASK - (span - 1)) % span
            while leftover < threshold:
                m = self._next32() * span
                leftover = m & _U32_MASK
        return low + (m >> 32)


def _leafy(rng: np.random.Generator, p_sparse: float) -> int:
    return SPARSE if rng.random() < p_sparse else FILLED


@functools.lru_cache(maxsize=None)
def _disc(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (dx, dz) of the disc ``dx² + dz² <= radius²``, x-major; read-only, shared."""
    d = np.arange(-radius, radius + 1)
    dx, dz = np.meshgrid(d, d, indexing="ij")
    keep = dx * dx + dz * dz <= radius * radius
    return _frozen(dx[keep]), _frozen(dz[keep])


@functools.lru_cache(maxsize=None)
def _ball(radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets of the ball ``dx² + dy² + dz² <= radius²``, x-major; read-only, shared."""
    d = np.arange(-radius, radius + 1)
    dx, dy, dz = np.meshgrid(d, d, d, indexing="ij")
    keep = dx * dx + dy * dy + dz * dz <= radius * radius
    return _frozen(dx[keep]), _frozen(dy[keep]), _frozen(dz[keep])


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=np.int64)
    array.flags.writeable = False
    return array


def _trunk(out: _Cells, x, ground, z, p: TreeParams, rng) -> int:
    """A tapering, slightly curved trunk: one disc per level, stamped in one batch."""
    curve = rng.uniform(-0.3, 0.3)
    trunk_height = int(p.height * 0.5)
    xs, ys, zs = [], [], []
    for y in range(1, trunk_height + 1):
        ratio = 1.0 - (y / trunk_height) * p.trunk_taper
        radius = int(max(p.trunk_radius * ratio, 0.5))
        offset = int(curve * (y / trunk_height) ** 2)
        dx, dz = _disc(radius)
        xs.append(dx + (x + offset))
        ys.append(np.full(len(dx), ground + y))
        zs.append(dz + z)
    if xs:
        out.add_many(np.concatenate(xs), np.concatenate(ys), np.concatenate(zs), FILLED)
    return trunk_height


def _pine(out: _Cells, x, ground, z, trunk_height, p: TreeParams, rng) -> None:
    """Layers of horizontal branches (SPARSE mostly) with FILLED needle clusters.

    The draws stay scalar and in the reference's order (each needle's offsets, then its
    test), so a seed keeps its cells; only the lookups are hoisted out of the loops.
    """
    integers, random, add = rng.integers, rng.random, out.points.append
    density = p.leaf_density
    for layer in range(p.branch_layers):
        y = ground + trunk_height // 2 + layer * 2
        if y > ground + p.height:
            break
        branches = int(integers(4, 7))
        length = int(p.branch_length * (1.0 - layer / p.branch_layers * 0.7))
        for i in range(branches):
            angle = i / branches * math.tau
            cos_a, sin_a = math.cos(angle), math.sin(angle)
            for r in range(length + 1):
                bx, bz = x + int(cos_a * r), z + int(sin_a * r)
                add((bx, y, bz, SPARSE if random() < 0.7 else FILLED))
                if r > length // 3:
                    for _ in range(3):
                        nx, ny, nz = (bx + int(integers(-1, 2)), y + int(integers(-1, 1)),
                                      bz + int(integers(-1, 2)))
                        if random() < density:
                            add((nx, ny, nz, FILLED))


def _oak(out: _Cells, x, ground, z, trunk_height, p: TreeParams, rng) -> None:
    """Thick rising branches with sub-branches, then a round FILLED canopy thinning outwards."""
    branches = int(rng.integers(3, 6))
    for i in range(branches):
        angle = i / branches * math.tau + rng.uniform(-0.3, 0.3)
        rise = rng.uniform(0.3, 0.6)
        for t in range(p.branch_length):
            progress = t / p.branch_length
            bx = x + int(math.cos(angle) * t)
            by = ground + trunk_height + int(rise * t)
            bz = z + int(math.sin(angle) * t)
            dx, dy, dz = _ball(int(2.0 * (1.0 - progress * 0.7)))
            kinds = np.where(rng.random(len(dx)) < 0.7, SPARSE, FILLED)
            out.add_many(bx + dx, by + dy, bz + dz, kinds)
            if t > p.branch_length // 3 and rng.random() < 0.3:
                sub_angle = angle + rng.uniform(-1.0, 1.0)
                for s in range(int(rng.integers(2, 5))):
                    out.add(bx + int(math.cos(sub_angle) * s), by + int(rng.integers(-1, 2)),
                            bz + int(math.sin(sub_angle) * s), _leafy(rng, 0.7))
    radius = p.canopy_radius
    centre_y = ground + trunk_height + p.canopy_height // 2
    dx, dy, dz = _ball(radius)
    dist_sq = dx * dx + dy * dy + dz * dz
    with np.errstate(divide="ignore", invalid="ignore"):  # radius 0: 0/0, as in the reference
        falloff = 1.0 - dist_sq / np.float64(radius * radius)
    keep = ~(rng.random(len(dx)) > p.leaf_density * falloff)  # a NaN test keeps the leaf
    out.add_many(x + dx[keep], centre_y + dy[keep], z + dz[keep], FILLED)


def _birch(out: _Cells, x, ground, z, trunk_height, p: TreeParams, rng) -> None:
    """Short rising branches with leaf clusters, then a small oval canopy at the trunk top."""
    start = trunk_height // 2
    for layer in range(p.branch_layers):
        y = ground + start + layer
        if y > ground + trunk_height:
            break
        branches = int(rng.integers(2, 5))
        for i in range(branches):
            angle = i / branches * math.tau
            length = int(rng.integers(2, p.branch_length + 1))
            for r in range(length):
                bx = x + int(math.cos(angle) * r)
                by = y + int(r * 0.3)
                bz = z + int(math.sin(angle) * r)
                out.add(bx, by, bz, _leafy(rng, 0.7))
                if r > length // 2 or y < ground + trunk_height:
                    for _ in range(3):
                        lx, ly, lz = (bx + int(rng.integers(-1, 2)), by + int(rng.integers(-1, 2)),
                                      bz + int(rng.integers(-1, 2)))
                        if rng.random() < p.leaf_density * 1.2:
                            out.add(lx, ly, lz, _leafy(rng, 0.5))
    half = p.canopy_height / 2.0
    top = ground + trunk_height
    if half == 0:
        return  # the reference's 0/0 progress makes every leaf test fail
    for dy in range(-(p.canopy_height // 2), p.canopy_height // 2 + 1):
        progress = abs(dy) / half
        dx, dz = _disc(int(p.canopy_radius * (1.0 - progress * 0.3)))
        keep = rng.random(len(dx)) < p.leaf_density * (1.0 - progress * 0.2)
        kinds = np.where(rng.random(int(keep.sum())) < 0.3, SPARSE, FILLED)
        out.add_many(x + dx[keep], np.full(int(keep.sum()), top + dy), z + dz[keep], kinds)


def _willow(out: _Cells, x, ground, z, trunk_height, p: TreeParams, rng) -> None:
    """Drooping branches with hanging leaves, and a loose canopy core on the trunk top."""
    branches = int(rng.integers(8, 13))
    for i in range(branches):
        angle = i / branches * math.tau + rng.uniform(-0.2, 0.2)
        start_y = ground + trunk_height // 2 + int(rng.integers(0, trunk_height // 3 + 1))
        for t in range(p.branch_length):
            droop = int((t / p.branch_length) ** 2 * 6.0)
            bx, by, bz = (x + int(math.cos(angle) * t), start_y - droop,
                          z + int(math.sin(angle) * t))
            if by <= ground:
                break
            out.add(bx, by, bz, _leafy(rng, 0.7))
            if t > 2:
                for dy in (-2, -1, 0):
                    if rng.random() < p.leaf_density:
                        out.add(bx, by + dy, bz, _leafy(rng, 0.5))
    core = p.canopy_radius // 2
    dx, dz = _disc(core)
    for dy in range(p.canopy_height // 2):
        keep = rng.random(len(dx)) < p.leaf_density
        kinds = np.where(rng.random(int(keep.sum())) < 0.5, SPARSE, FILLED)
        out.add_many(x + dx[keep], np.full(int(keep.sum()), ground + trunk_height + dy),
                     z + dz[keep], kinds)


_CANOPIES = {"oak": _oak, "pine": _pine, "birch": _birch, "willow": _willow}


def tree_cells(cfg: TerrainConfig, heights: np.ndarray, trees: list) -> tuple:
    """Cells of every placed tree (own RNG per tree, seeded by seed and position)."""
    out = _Cells()
    for x, z, params in trees:
        rng = _Draws(_rng(cfg._seed & _U32, _STREAM_TREE, x, z))
        ground = int(heights[x, z])
        trunk_height = _trunk(out, x, ground, z, params, rng)
        _CANOPIES[params.kind](out, x, ground, z, trunk_height, params, rng)
    return out.arrays()


# --- assembly --------------------------------------------------------------------------------
def merge_cells(coords: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row per coordinate, bits OR-ed together (cells accumulate flags as in the reference).

    Rows come out sorted by (x, y, z), as ``np.unique(coords, axis=0)`` would give them; the
    rows are packed into one int64 key each, which sorts several times faster than rows.
    """
    coords = coords.reshape(-1, 3).astype(np.int64)
    if len(bits) == 0:
        return coords, bits.astype(np.uint32)
    low = coords.min(axis=0)
    span = coords.max(axis=0) - low + 1
    if float(span[0]) * float(span[1]) * float(span[2]) >= 2.0 ** 62:
        unique, inverse = np.unique(coords, axis=0, return_inverse=True)
    else:
        rel = coords - low
        keys = (rel[:, 0] * span[1] + rel[:, 1]) * span[2] + rel[:, 2]
        unique_keys, inverse = np.unique(keys, return_inverse=True)
        yz = span[1] * span[2]
        unique = np.stack([unique_keys // yz, unique_keys // span[2] % span[1],
                           unique_keys % span[2]], axis=1) + low
    merged = np.zeros(len(unique), dtype=np.uint32)
    np.bitwise_or.at(merged, inverse.reshape(-1), bits.astype(np.uint32))
    return unique.astype(np.int64), merged


def _within(coords: np.ndarray, size: tuple) -> np.ndarray:
    return np.all((coords >= 0) & (coords <= np.asarray(size, dtype=np.int64)), axis=1)


def generate_cells(cfg: TerrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """All terrain cells for ``cfg`` in the terrain frame (x, y up, z), one row per cell."""
    heights = height_map(cfg)
    g_coords, g_bits = ground_cells(cfg, heights)
    t_coords, t_bits = tree_cells(cfg, heights, place_trees(cfg, heights))
    inside = _within(t_coords, cfg._size)
    t_coords, t_bits = t_coords[inside], t_bits[inside]
    if len(t_bits) == 0:
        return g_coords, g_bits
    # Ground rows are unique already; merge only the tree cells and the ground they touch.
    t_coords, t_bits = merge_cells(t_coords, t_bits)
    size = np.asarray(cfg._size, dtype=np.int64) + 1
    g_keys = (g_coords[:, 0] * size[1] + g_coords[:, 1]) * size[2] + g_coords[:, 2]
    t_keys = (t_coords[:, 0] * size[1] + t_coords[:, 1]) * size[2] + t_coords[:, 2]
    order = np.argsort(g_keys)
    pos = np.searchsorted(g_keys[order], t_keys)
    pos = np.minimum(pos, len(order) - 1)
    hit = g_keys[order][pos] == t_keys
    g_bits = g_bits.copy()
    g_bits[order[pos[hit]]] |= t_bits[hit]
    return (np.concatenate([g_coords, t_coords[~hit]]),
            np.concatenate([g_bits, t_bits[~hit]]))
