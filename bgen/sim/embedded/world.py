"""Cell, VoxelGrid, VoxelSet, DenseSnapshot: the voxel world (voxelsim/src/env.rs, py.rs).

A world is a sparse map from integer voxel coordinates ``(x, y, z)`` to a ``Cell`` bit set.
Axes are voxelsim's: z grows downwards, so a *negative* z is up. The unit cube of voxel
``(x, y, z)`` spans ``[x - 0.5, x + 0.5]`` on each axis (its centre is the integer point).

Storage keeps two views of the same cells, each built on demand and cached:

* a dict ``{(x, y, z): bits}`` — what point queries (collisions, the planner) use;
* numpy arrays ``coords`` (int32, N×3) and ``bits`` (uint32, N) — what bulk consumers use
  (``as_numpy``, the renderer codec, the ray caster).

Every mutation goes through ``_set_bits``/``_remove``, which drop the arrays and bump
``_version``, so a cache keyed on ``_version`` knows when to rebuild.

Internal interface for other embedded modules (not part of voxelsim's API):

    grid._cells()                       dict {(x, y, z): int bits}; read it, never mutate it
    grid._arrays()                      (coords int32 N×3, bits uint32 N), read-only, same order
    VoxelGrid._from_arrays(c, b)        build from unique coords + bits (dict built lazily)
    VoxelGrid._sharing(c, b, dense)     the same over read-only arrays, without a copy
    VoxelGrid._from_cells(d)            build from a dict {(x, y, z): int bits}; takes ownership
    grid._set_bits(coord, bits), grid._remove(coord), grid._version
    grid._derived()                     a dict for data derived from the cells (planner
                                        memos...), emptied on every mutation
    grid._dense()                       DenseCells of an array-backed, unchanged world (point
                                        queries without building the dict), or None
    Cell._of(bits)                      the (shared, immutable) Cell for a bit set
"""

from __future__ import annotations

import math

import numpy as np

from bgen.sim.embedded.convert import (
    PanicException, to_coord, to_dict, to_float_array, to_instance,
)
from bgen.sim.embedded.convert import Sealed

# --- cell flags: the bit values of voxelsim's `bitflags! Cell: u32` --------------------------
DRONE_OCCUPIED = 0b0000_0001
DRONE_ADJACENT = 0b0000_0010
DRONE_HISTORIC = 0b0000_0100
DRONE_TRAJECTORY = 0b0000_1000
FILLED = 0b0001_0000
SPARSE = 0b0010_0000
GROUND = 0b0100_0000
TARGET = 0b1000_0000
INTEREST = 0b1_0000_0000

FLAGS = (
    ("DRONE_OCCUPIED", DRONE_OCCUPIED), ("DRONE_ADJACENT", DRONE_ADJACENT),
    ("DRONE_HISTORIC", DRONE_HISTORIC), ("DRONE_TRAJECTORY", DRONE_TRAJECTORY),
    ("FILLED", FILLED), ("SPARSE", SPARSE), ("GROUND", GROUND), ("TARGET", TARGET),
    ("INTEREST", INTEREST),
)
ALL_FLAGS = 0x1FF

_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1
# A dense snapshot larger than this many cells would need gigabytes as a Python list.
_MAX_SNAPSHOT_CELLS = 1 << 27
_DIMS_ASSERTION = "assertion failed: dims.x < 1.0 && dims.y < 1.0 && dims.z < 1.0"


def flag_names(bits: int) -> list[str]:
    """Names of the known flags set in ``bits``, in bit order."""
    return [name for name, bit in FLAGS if bits & bit]


# --- Cell ------------------------------------------------------------------------------------
class Cell(Sealed):
    """A voxel's flags (``bits_py()``); built only by ``filled()``, ``sparse()``, ``interest()``.

    Embedded differences: cells compare and hash by value (voxelsim's pyclass compares by
    identity, so ``Cell.filled() == Cell.filled()`` is False there: compare ``bits_py()``);
    the repr is bitflags' Debug form, e.g. ``Cell(FILLED | GROUND)``.
    """

    __slots__ = ("_bits",)

    def __init__(self, *args, **kwargs):
        raise TypeError("No constructor defined for Cell")

    @classmethod
    def _of(cls, bits: int) -> "Cell":
        """The shared Cell for ``bits`` (cells are immutable, so one object per bit set)."""
        cell = _CELLS.get(bits)
        if cell is None:
            cell = object.__new__(cls)
            cell._bits = int(bits)
            if len(_CELLS) < 4096:
                _CELLS[bits] = cell
        return cell

    @staticmethod
    def filled() -> "Cell":
        return Cell._of(FILLED)

    @staticmethod
    def sparse() -> "Cell":
        return Cell._of(SPARSE)

    @staticmethod
    def interest() -> "Cell":
        return Cell._of(INTEREST)

    def is_filled_py(self) -> bool:
        return bool(self._bits & FILLED)

    def is_sparse_py(self) -> bool:
        return bool(self._bits & SPARSE)

    def is_interest_py(self) -> bool:
        return bool(self._bits & INTEREST)

    def bits_py(self) -> int:
        return self._bits

    def __eq__(self, other) -> bool:
        if isinstance(other, Cell):
            return self._bits == other._bits
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Cell", self._bits))

    def __repr__(self) -> str:
        names = flag_names(self._bits)
        unknown = self._bits & ~ALL_FLAGS
        if unknown:
            names.append(f"0x{unknown:x}")
        return f"Cell({' | '.join(names) if names else '0x0'})"

    def __reduce__(self):
        return (Cell._of, (self._bits,))


_CELLS: dict[int, Cell] = {}


# --- VoxelSet --------------------------------------------------------------------------------
class VoxelSet(Sealed):
    """A set of voxel coordinates (what ``difference_set_from_py`` returns).

    voxelsim binds no methods on it; ``_cells()`` (a frozenset of ``(x, y, z)``) is internal.
    """

    __slots__ = ("_coords",)

    def __init__(self, *args, **kwargs):
        raise TypeError("No constructor defined for VoxelSet")

    @classmethod
    def _of(cls, coords) -> "VoxelSet":
        self = object.__new__(cls)
        self._coords = frozenset(coords)
        return self

    def _cells(self) -> frozenset:
        return self._coords


# --- DenseSnapshot ---------------------------------------------------------------------------
class DenseSnapshot(Sealed):
    """Cells of the box ``centre ± half_dims`` (inclusive), x outermost, then y, z innermost.

    ``data_py()`` gives the bits as a list of ints; index of ``(x, y, z)`` is
    ``((x - min.x) * ny + (y - min.y)) * nz + (z - min.z)`` with ``n = 2 * half_dims + 1``.
    Internal: ``_centre``, ``_half_dims`` (tuples), ``_data`` (int32 numpy array).
    """

    __slots__ = ("_centre", "_half_dims", "_data")

    def __init__(self, *args, **kwargs):
        raise TypeError("No constructor defined for DenseSnapshot")

    @classmethod
    def _of(cls, centre, half_dims, data: np.ndarray) -> "DenseSnapshot":
        self = object.__new__(cls)
        self._centre, self._half_dims, self._data = tuple(centre), tuple(half_dims), data
        return self

    def data_py(self) -> list:
        return self._data.tolist()


# --- pure helpers ----------------------------------------------------------------------------
def _trunc_i32(value: float) -> int:
    """Rust's ``f64 as i32``: toward zero, saturating, NaN to 0."""
    if value != value:
        return 0
    if value >= _I32_MAX:
        return _I32_MAX
    if value <= _I32_MIN:
        return _I32_MIN
    return int(value)


def _wrap_i32(value: int) -> int:
    """Two's-complement wrap, as voxelsim's release build does on i32 overflow."""
    return ((value - _I32_MIN) & 0xFFFF_FFFF) + _I32_MIN


def _touching(base: int, low: float, high: float) -> list[int]:
    """Of ``base-1, base, base+1``, the integers whose unit cube meets ``[low, high]``."""
    return [c for c in (base - 1, base, base + 1) if high >= c - 0.5 and c + 0.5 >= low]


def collisions_in(cells, centre: tuple, dims: tuple) -> list:
    """voxelsim's ``VoxelGrid::collisions``: cells whose unit cube touches the box.

    ``cells``: the dict ``{(x, y, z): bits}``, or a function ``(x, y, z) -> bits | None``
    (``DenseCells.get``).

    The box is centred at ``centre`` with full extents ``dims`` (each must be < 1, else the
    Rust assertion panics). Only the 26 neighbours of ``trunc(centre)`` are examined — *not*
    ``trunc(centre)`` itself, exactly like the reference — and touching faces count.
    Result order is the reference's: x offset outermost, then y, then z, each ascending.
    """
    dx, dy, dz = dims
    if not (dx < 1.0 and dy < 1.0 and dz < 1.0):
        raise PanicException(_DIMS_ASSERTION)
    cx, cy, cz = centre
    if not (math.isfinite(cx) and math.isfinite(cy) and math.isfinite(cz)):
        return []  # an infinite or NaN box overlaps nothing
    ix, iy, iz = _trunc_i32(cx), _trunc_i32(cy), _trunc_i32(cz)
    hx, hy, hz = dx * 0.5, dy * 0.5, dz * 0.5
    xs = _touching(ix, cx - hx, cx + hx)
    ys = _touching(iy, cy - hy, cy + hy)
    zs = _touching(iz, cz - hz, cz + hz)
    get = cells.get if isinstance(cells, dict) else cells
    found = []
    for x in xs:
        for y in ys:
            for z in zs:
                if x == ix and y == iy and z == iz:
                    continue
                bits = get((x, y, z))
                if bits is not None:
                    found.append(([x, y, z], Cell._of(bits)))
    return found


def collision_counts(world, centres: np.ndarray, dims: tuple) -> np.ndarray | None:
    """``len(world.collisions_py(centre, dims))`` for every row of ``centres`` (N, 3) m, at
    once: (N,) int64, or None when ``world`` is not an unchanged array-backed embedded world
    (then ask it step by step).

    A whole flight's counts in a few numpy operations instead of one Python call per step
    (the trusted replay's collisions cost a seventh of it). Same rules as ``collisions_in``:
    the 26 neighbours of ``trunc(centre)`` whose unit cubes touch the box (faces count), a
    non-finite centre touches nothing; ``dims`` are full extents, each < 1, else the same
    panic.
    """
    dense = world._dense() if type(world) is VoxelGrid else None
    if dense is None:
        return None
    dx, dy, dz = (float(v) for v in dims)
    if not (dx < 1.0 and dy < 1.0 and dz < 1.0):
        raise PanicException(_DIMS_ASSERTION)
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 3)
    finite = np.isfinite(centres).all(axis=1)
    safe = np.where(finite[:, None], centres, 0.0)
    base = np.trunc(np.clip(safe, _I32_MIN, _I32_MAX)).astype(np.int64)
    half = np.array([dx, dy, dz]) * 0.5
    low, high = safe - half, safe + half
    box_low = np.array(dense.low, dtype=np.int64)
    box_shape = np.array(dense.shape, dtype=np.int64)
    counts = np.zeros(len(centres), dtype=np.int64)
    for ox in (-1, 0, 1):
        for oy in (-1, 0, 1):
            for oz in (-1, 0, 1):
                if ox == oy == oz == 0:
                    continue           # trunc(centre) itself is never examined
                cell = base + np.array([ox, oy, oz])
                near = cell.astype(np.float64)
                touching = ((high >= near - 0.5) & (near + 0.5 >= low)).all(axis=1)
                local = cell - box_low
                inside = ((local >= 0) & (local < box_shape)).all(axis=1) & touching & finite
                index = (local[inside, 0] * box_shape[1] + local[inside, 1]) * box_shape[2] \
                    + local[inside, 2]
                counts[inside] += dense.values[index] != 0
    return counts


def snapshot_bounds(centre: tuple, half_dims: tuple) -> tuple[tuple, tuple]:
    """(min, max) corners of a dense snapshot, or a Rust panic when voxelsim would panic.

    voxelsim reserves ``(max-min).x * (max-min).y * (max-min).z`` cells first (i32, wrapping);
    a negative product is a "capacity overflow" panic.
    """
    low = tuple(_wrap_i32(c - h) for c, h in zip(centre, half_dims))
    high = tuple(_wrap_i32(c + h) for c, h in zip(centre, half_dims))
    span = [_wrap_i32(b - a) for a, b in zip(low, high)]
    if _wrap_i32(_wrap_i32(span[0] * span[1]) * span[2]) < 0:
        raise PanicException("capacity overflow")
    return low, high


def dense_bits(grid: "VoxelGrid", low: tuple, high: tuple) -> np.ndarray:
    """Bits of every cell in the inclusive box ``low..high`` as int32, x-major, z fastest."""
    shape = tuple(max(0, b - a + 1) for a, b in zip(low, high))
    total = shape[0] * shape[1] * shape[2]
    if total == 0:
        return np.zeros(0, dtype=np.int32)
    if total > _MAX_SNAPSHOT_CELLS:
        raise MemoryError(f"dense snapshot of {total} cells exceeds limit of {_MAX_SNAPSHOT_CELLS}")
    # Walk the box when it is small next to the world, else scatter the world into the box.
    if grid._dict is not None and (total <= 4096 or total * 8 < grid._len()):
        get = grid._dict.get
        values = [get((x, y, z), 0)
                  for x in range(low[0], high[0] + 1)
                  for y in range(low[1], high[1] + 1)
                  for z in range(low[2], high[2] + 1)]
        return np.array(values, dtype=np.int32)
    dense = grid._dense()   # an unchanged array world: its dense copy, built once
    if dense is not None:
        return dense.box(low, high)
    coords, bits = grid._arrays()
    out = np.zeros(shape, dtype=np.int32)
    if len(bits):
        rel = coords.astype(np.int64) - np.asarray(low, dtype=np.int64)
        inside = np.all((rel >= 0) & (rel < np.asarray(shape, dtype=np.int64)), axis=1)
        rel = rel[inside]
        out[rel[:, 0], rel[:, 1], rel[:, 2]] = bits[inside].astype(np.int32)
    return out.reshape(-1)


def _floats3(value, arg: str) -> tuple:
    """``[f64; 3]`` extraction with a fast path for a list/tuple of three floats."""
    if type(value) is list or type(value) is tuple:
        if len(value) == 3:
            x, y, z = value
            if type(x) is float and type(y) is float and type(z) is float:
                return (x, y, z)
    return to_float_array(value, 3, arg)


def _freeze(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


# --- DenseCells ------------------------------------------------------------------------------
# Above this many cells in the bounding box a dense copy is not worth it (point queries then
# build the dict instead): 2**26 cells are 256 MB as uint32.
_MAX_DENSE_CELLS = 1 << 26
_PRESENT = 1 << 31   # marks a stored cell in the dense copy (a cell's bits may be 0)


class DenseCells:
    """The cells of an unchanged world as one dense uint32 box, for point queries.

    ``low``: the box's minimum corner (voxels); ``shape``: (nx, ny, nz); ``values``: flat
    uint32, index ``((x - low.x) * ny + (y - low.y)) * nz + (z - low.z)``, a stored cell holds
    ``bits | 2**31``, an absent one 0; ``get((x, y, z))`` gives the bits or None, like
    ``dict.get``. Built in a few ms from the world's arrays, where building the dict of a
    140,000-cell terrain takes about 100 ms; read-only, so copies of one world may share it.
    ``derived``: read-only data computed from these cells (the planner's obstacles per
    padding), shared with them by every copy of the world.
    """

    __slots__ = ("low", "shape", "values", "_flat", "derived")

    def __init__(self, low: tuple, shape: tuple, values: np.ndarray):
        self.low, self.shape, self.values = low, shape, _freeze(values)
        self._flat = memoryview(values)   # indexing a memoryview is several times numpy's speed
        self.derived: dict = {}

    #: ``packed()``: six header words (low x, y, z as int32 bit patterns, then the shape),
    #: then the values.
    HEADER_WORDS = 6

    def packed(self) -> np.ndarray:
        """One flat uint32 array holding the box and the values (a file's content)."""
        header = np.array(self.low + self.shape, dtype=np.int64).astype(np.int32).view(np.uint32)
        return np.concatenate([header, self.values])

    @classmethod
    def unpacked(cls, packed: np.ndarray) -> "DenseCells | None":
        """The DenseCells of a ``packed()`` array (e.g. memory-mapped from a file, without a
        copy); None when it is not one."""
        if packed.ndim != 1 or packed.dtype != np.uint32 or len(packed) < cls.HEADER_WORDS:
            return None
        header = [int(v) for v in packed[:cls.HEADER_WORDS].view(np.int32)]
        low, shape = tuple(header[:3]), tuple(header[3:])
        if min(shape) < 1 or shape[0] * shape[1] * shape[2] != len(packed) - cls.HEADER_WORDS:
            return None
        return cls(low, shape, packed[cls.HEADER_WORDS:])

    @classmethod
    def build(cls, coords: np.ndarray, bits: np.ndarray) -> "DenseCells | None":
        """From unique coords (N×3) and bits (N); None when the box is too large or a bit set
        uses bit 31."""
        if len(bits) == 0 or int(bits.max()) & _PRESENT:
            return None
        c = np.ascontiguousarray(coords.T)   # axis-major: contiguous reductions
        low = c.min(axis=1).astype(np.int64)
        shape = c.max(axis=1).astype(np.int64) - low + 1
        if float(shape[0]) * float(shape[1]) * float(shape[2]) > _MAX_DENSE_CELLS:
            return None
        values = np.zeros(int(shape[0] * shape[1] * shape[2]), dtype=np.uint32)
        values[((c[0] - low[0]) * shape[1] + (c[1] - low[1])) * shape[2]
               + (c[2] - low[2])] = bits | _PRESENT
        return cls(tuple(int(v) for v in low), tuple(int(v) for v in shape), values)

    def holds(self, coords: np.ndarray, bits: np.ndarray) -> bool:
        """Whether each ``coords[i]`` (N, 3) is a stored cell whose bits are ``bits[i]`` (N,):
        ``get`` row by row, in one indexing."""
        coords = np.asarray(coords, dtype=np.int64).reshape(-1, 3)
        bits = np.asarray(bits, dtype=np.int64)
        local = coords - np.array(self.low, dtype=np.int64)
        shape = np.array(self.shape, dtype=np.int64)
        if not ((local >= 0) & (local < shape)).all() or (bits & _PRESENT).any():
            return False
        stored = self.values[(local[:, 0] * shape[1] + local[:, 1]) * shape[2] + local[:, 2]]
        return bool(np.array_equal(stored.astype(np.int64), bits | _PRESENT))

    def get(self, coord: tuple):
        x, y, z = coord
        lx, ly, lz = self.low
        nx, ny, nz = self.shape
        x -= lx
        y -= ly
        z -= lz
        if 0 <= x < nx and 0 <= y < ny and 0 <= z < nz:
            value = self._flat[(x * ny + y) * nz + z]
            if value:
                return value & ~_PRESENT
        return None

    def box(self, low: tuple, high: tuple) -> np.ndarray:
        """Bits (int32) of the inclusive box ``low..high``, x-major, z fastest; 0 outside."""
        shape = tuple(b - a + 1 for a, b in zip(low, high))
        out = np.zeros(shape, dtype=np.int32)
        grid = self.values.reshape(self.shape)
        src, dst = [], []
        for a, n, lo, size in zip(low, shape, self.low, self.shape):
            start, stop = max(a, lo), min(a + n, lo + size)
            if start >= stop:
                return out.reshape(-1)
            src.append(slice(start - lo, stop - lo))
            dst.append(slice(start - a, stop - a))
        out[tuple(dst)] = (grid[tuple(src)] & ~np.uint32(_PRESENT)).astype(np.int32)
        return out.reshape(-1)


# --- VoxelGrid -------------------------------------------------------------------------------
class VoxelGrid(Sealed):
    """A sparse voxel world (see the module docstring for axes, storage and internals).

    Embedded differences: none in behaviour that we know of. ``to_dict_py()`` raises
    ``TypeError: unhashable type: 'list'`` on a non-empty world, as voxelsim does (its keys are
    ``[i32; 3]``, which PyO3 turns into lists); use ``to_dict_py_tolistpy()`` instead.
    """

    __slots__ = ("_dict", "_coords", "_bits", "_version", "_memo")

    def __init__(self):
        self._dict: dict | None = {}
        self._coords: np.ndarray | None = None
        self._bits: np.ndarray | None = None
        self._version = 0
        self._memo: dict = {}  # derived data (see _derived), dropped on mutation

    # --- internal construction and access -----------------------------------------------
    @classmethod
    def _from_cells(cls, cells: dict) -> "VoxelGrid":
        """Wrap a dict ``{(x, y, z): int bits}`` (trusted; the grid takes ownership)."""
        self = cls.__new__(cls)
        self._dict, self._coords, self._bits, self._version = cells, None, None, 0
        self._memo = {}
        return self

    @classmethod
    def _from_arrays(cls, coords, bits) -> "VoxelGrid":
        """Build from coords (N×3 ints, rows unique) and bits (N ints); the dict comes lazily."""
        coords = np.ascontiguousarray(coords, dtype=np.int32).reshape(-1, 3)
        bits = np.ascontiguousarray(bits, dtype=np.uint32).reshape(-1)
        if len(coords) != len(bits):
            raise ValueError(f"coords has {len(coords)} rows but bits has {len(bits)} items")
        self = cls.__new__(cls)
        self._dict, self._version, self._memo = None, 0, {}
        self._coords, self._bits = _freeze(coords.copy()), _freeze(bits.copy())
        return self

    @classmethod
    def _sharing(cls, coords: np.ndarray, bits: np.ndarray,
                 dense: "DenseCells | None" = None) -> "VoxelGrid":
        """A grid over read-only arrays without copying them (a world cache hands out many).

        The arrays must be N×3 int32 and N uint32 with unique rows; writeable ones are copied
        first. ``dense``: their ``DenseCells`` when already built (read-only, so shared too).
        A change to the grid builds its own dict and leaves the arrays as they are.
        """
        if coords.flags.writeable or bits.flags.writeable or coords.dtype != np.int32 \
                or bits.dtype != np.uint32:
            return cls._from_arrays(coords, bits)
        self = cls.__new__(cls)
        self._dict, self._version, self._memo = None, 0, {}
        self._coords, self._bits = coords, bits
        if dense is not None:
            self._memo["dense"] = dense
        return self

    def _cells(self) -> dict:
        if self._dict is None:
            keys = map(tuple, self._coords.tolist())
            self._dict = dict(zip(keys, self._bits.tolist()))
        return self._dict

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._coords is None:
            cells = self._dict
            n = len(cells)
            coords = np.array(list(cells.keys()), dtype=np.int32).reshape(n, 3)
            bits = np.fromiter(cells.values(), dtype=np.uint32, count=n)
            self._coords, self._bits = _freeze(coords), _freeze(bits)
        return self._coords, self._bits

    def _dense(self) -> DenseCells | None:
        """The cells as a ``DenseCells`` while the world is array-backed and unchanged (kept
        until the next mutation), else None: then point queries use the dict."""
        if self._dict is not None:
            return None
        memo = self._memo
        if "dense" not in memo:
            memo["dense"] = DenseCells.build(self._coords, self._bits)
        return memo["dense"]

    def _len(self) -> int:
        return len(self._dict) if self._dict is not None else len(self._bits)

    def _derived(self) -> dict:
        """A scratch dict for data computed from the cells; it is emptied on every mutation."""
        return self._memo

    def _mutated(self) -> None:
        self._coords = self._bits = None
        self._memo = {}
        self._version += 1

    def _set_bits(self, coord: tuple, bits: int) -> None:
        self._cells()[coord] = int(bits)
        self._mutated()

    def _remove(self, coord: tuple) -> None:
        if self._cells().pop(coord, None) is not None:
            self._mutated()

    # --- bound methods (voxelsim/src/py.rs) ---------------------------------------------
    @staticmethod
    def from_dict_py(dict) -> "VoxelGrid":
        """A world from ``{(x, y, z): Cell}``; keys are any length-3 int sequences."""
        source = to_dict(dict, "dict")
        cells = {}
        for key, value in source.items():
            if not (type(key) is tuple and len(key) == 3 and type(key[0]) is int
                    and type(key[1]) is int and type(key[2]) is int
                    and _I32_MIN <= key[0] <= _I32_MAX and _I32_MIN <= key[1] <= _I32_MAX
                    and _I32_MIN <= key[2] <= _I32_MAX):
                key = to_coord(key, "dict")
            if type(value) is not Cell:
                value = to_instance(value, Cell, "dict")
            cells[key] = value._bits
        return VoxelGrid._from_cells(cells)

    def to_dict_py(self) -> dict:
        """voxelsim builds this dict with list keys, so a non-empty world raises TypeError."""
        if self._len():
            raise TypeError("unhashable type: 'list'")
        return {}

    def to_dict_py_tolistpy(self) -> list:
        """Every cell as ``((x, y, z), Cell)``, in storage order."""
        of = Cell._of
        return [(coord, of(bits)) for coord, bits in self._cells().items()]

    def as_numpy(self) -> tuple:
        """``(coords float32 N×3, values float32 N)``: 1.0 filled, else 0.5 sparse, else 0.0."""
        coords, bits = self._arrays()
        values = np.where(bits & FILLED, 1.0, np.where(bits & SPARSE, 0.5, 0.0))
        return coords.astype(np.float32), values.astype(np.float32)

    def collisions_py(self, centre, dims) -> list:
        """``[([x, y, z], Cell), ...]`` touched by the box (see ``collisions_in``)."""
        centre = _floats3(centre, "centre")
        dims = _floats3(dims, "dims")
        dense = self._dense()
        return collisions_in(self._cells() if dense is None else dense.get, centre, dims)

    def dense_snapshot_py(self, centre, dims) -> DenseSnapshot:
        """The box ``centre ± dims`` (``dims`` are half extents) as a ``DenseSnapshot``."""
        centre = to_coord(centre, "centre")
        half = to_coord(dims, "dims")
        low, high = snapshot_bounds(centre, half)
        return DenseSnapshot._of(centre, half, dense_bits(self, low, high))

    def clone_py(self) -> "VoxelGrid":
        twin = VoxelGrid.__new__(VoxelGrid)
        twin._dict = None if self._dict is None else self._dict.copy()
        twin._coords, twin._bits = self._coords, self._bits  # read-only arrays are shared
        twin._version, twin._memo = 0, {}
        if self._dict is None and self._memo.get("dense") is not None:
            twin._memo["dense"] = self._memo["dense"]   # read-only, same cells
        return twin

    def add_target_cell(self, coord) -> None:
        """Set the cell at ``coord`` to exactly ``TARGET`` (replacing whatever was there)."""
        self._set_bits(to_coord(coord, "coord"), TARGET)

    def difference_set_from_py(self, other) -> VoxelSet:
        """Coordinates present in this world and absent from ``other``."""
        other = to_instance(other, VoxelGrid, "other")
        return VoxelSet._of(self._cells().keys() - other._cells().keys())
