"""AStarActionPlanner: voxelsim's 6-connected A* (voxelsim/src/planner/astar.rs), move for move.

The search, as the reference runs it:

* moves are the 6 face neighbours, tried in the order +x, -x, +y, -y, +z, -z;
* a cell is blocked when any cell within Chebyshev distance ``padding`` (the cell itself
  when padding is 0) has FILLED, GROUND, DRONE_OCCUPIED or DRONE_TRAJECTORY set
  (SPARSE, TARGET and INTEREST cells are free space);
* cost is lexicographic: first the number of steps, then the sum over the visited cells of
  their distance to the straight segment origin→dst (×1000, rounded half away from zero);
* the open list pops the smallest (steps + Manhattan distance to dst, distance sum), then on a
  tie the largest x, then the largest y, then the largest z;
* at most 200,000 expansions, then "No viable path to target.";
* errors, in the order checked: origin == dst → "The parameters specified were invalid.",
  origin blocked → "Path to the target is blocked.", search exhausted or capped →
  "No viable path to target."; each raised as ``Exception("Failed to create action intent:
  <reason>")``. Urgency is checked only when a path is found, by ``ActionIntent``
  (``PanicException`` when urgency <= 0), as in the reference.

Two shortcuts give the same answers sooner: a blocked destination can never be reached, and
when a bounded flood fill from the destination closes without meeting the origin, the
reference would search until exhausted or capped and fail with the same error. The fill gives
up as soon as it leaves the obstacles' bounding box (the region is then unbounded).

Where the world is array-backed and unchanged (terrain and cached worlds), the search reads
its ``Obstacles`` for the padding instead of its dict: a dense occupancy box with the padding
already applied by a vectorised dilation, built once per world and padding and dropped when
the world changes. Same answers (the equivalence tests run both), without the ~100 ms it
takes to turn a 140,000-cell world into a dict before the first plan.

Everything else is bookkeeping that keeps the reference's order exactly: cells are packed into
one int, costs and heap entries are ints ordered as the reference's tuples (see ``search``).
Python still needs about 4 µs per expansion, so a search that runs to the cap takes about a
second where voxelsim's takes milliseconds.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from bgen.sim.embedded.convert import to_coord, to_float, to_instance, to_int
from bgen.sim.embedded.intent import ActionIntent, MoveDir
from bgen.sim.embedded.world import (
    DRONE_OCCUPIED, DRONE_TRAJECTORY, FILLED, GROUND, VoxelGrid,
)
from bgen.sim.embedded.convert import Sealed

OBSTACLE_BITS = FILLED | GROUND | DRONE_OCCUPIED | DRONE_TRAJECTORY
MAX_EXPANSIONS = 200_000
DIST_SCALE = 1000.0

PATH_BLOCKED = "Path to the target is blocked."
NO_VIABLE_PATH = "No viable path to target."
DST_FILLED = "Destination voxel is filled."  # defined by voxelsim, never returned by A*
INVALID_PARAMS = "The parameters specified were invalid."

# (dx, dy, dz, move) in the reference's neighbour order.
NEIGHBOURS = (
    (1, 0, 0, MoveDir.Forward), (-1, 0, 0, MoveDir.Back),
    (0, 1, 0, MoveDir.Right), (0, -1, 0, MoveDir.Left),
    (0, 0, 1, MoveDir.Down), (0, 0, -1, MoveDir.Up),
)

# Flood-fill checks of the destination's free region: (after this many expansions, cell limit).
_ENCLOSURE_CHECKS = ((5_000, 5_000), (40_000, 400_000))


class PlannerError(Exception):
    """Why a plan failed; ``reason`` is voxelsim's ``PlannerError`` Display text."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- pure search -----------------------------------------------------------------------------
# Cells are keyed by one int, (x + off) << 2w | (y + off) << w | (z + off) with off = 2**(w-1),
# so a neighbour is one addition and a dict probe hashes a small int instead of a tuple. The
# width w is chosen per search so that every cell the search or the flood fill can reach
# (origin ± expansions, dst ± flood limit, ± padding) fits in its field, whatever the
# coordinates; fields then never borrow from each other.
def field_width(origin: tuple, dst: tuple, padding: int) -> int:
    """Bits per packed coordinate that hold every cell a search from origin to dst can touch."""
    reach = (max(abs(c) for c in (*origin, *dst)) + padding + 4
             + max(MAX_EXPANSIONS, max(limit for _, limit in _ENCLOSURE_CHECKS)))
    return max(21, reach.bit_length() + 1)


def pack(coord: tuple, w: int) -> int:
    off = 1 << (w - 1)
    return (coord[0] + off) << (2 * w) | (coord[1] + off) << w | (coord[2] + off)


def unpack(key: int, w: int) -> tuple:
    off, mask = 1 << (w - 1), (1 << w) - 1
    return (key >> (2 * w)) - off, ((key >> w) & mask) - off, (key & mask) - off


def blocked_test(cells: dict, padding: int, w: int, memo: dict | None = None):
    """``(answers, blocked)``: known answers by packed key, and a function ``key -> bool``.

    ``blocked(k)`` decides a key missing from ``answers`` and records it there (callers read
    ``answers`` first). Pass the same ``memo`` again for the same, unchanged world and padding
    to reuse the answers. The padded cube is split into memoized lines: z-rows of 2p+1 cells,
    then y-planes of 2p+1 rows, then the cube of 2p+1 planes along x.
    """
    get = cells.get
    off, mask, w2 = 1 << (w - 1), (1 << w) - 1, 2 * w
    memo = {} if memo is None else memo
    answers = memo.setdefault(("blocked", w), {})
    if padding <= 0:
        def blocked(k):
            hit = answers[k] = bool(
                get(((k >> w2) - off, ((k >> w) & mask) - off, (k & mask) - off), 0)
                & OBSTACLE_BITS)
            return hit
        return answers, blocked
    span = range(-padding, padding + 1)
    x_steps = tuple(d << w2 for d in span)
    y_steps = tuple(d << w for d in span)
    rows = memo.setdefault(("rows", w), {})      # key -> obstacle among z - p .. z + p
    planes = memo.setdefault(("planes", w), {})  # key -> obstacle row among y - p .. y + p

    row_get, plane_get = rows.get, planes.get

    def row(k):
        x, y, z = (k >> w2) - off, ((k >> w) & mask) - off, (k & mask) - off
        for dz in span:
            if get((x, y, z + dz), 0) & OBSTACLE_BITS:
                rows[k] = True
                return True
        rows[k] = False
        return False

    def plane(k):
        for dy in y_steps:
            r = row_get(k + dy)
            if r or (r is None and row(k + dy)):
                planes[k] = True
                return True
        planes[k] = False
        return False

    def blocked(k):
        for dx in x_steps:
            p = plane_get(k + dx)
            if p or (p is None and plane(k + dx)):
                answers[k] = True
                return True
        answers[k] = False
        return False

    return answers, blocked


# Above this many cells (obstacles' box grown by the padding) the dense occupancy is not worth
# it and the search reads the world's dict instead.
MAX_OCCUPANCY_CELLS = 1 << 27


class Obstacles:
    """Blocked cells of one world for one padding, as a dense occupancy box (read-only).

    ``low``, ``shape``: the box, the obstacles' bounding box grown by ``padding`` on every
    side (voxels); ``occupied``: a read-only byte view, 1 where a cell is blocked, index
    ``((x - low.x) * ny + (y - low.y)) * nz + (z - low.z)``; every cell outside the box is
    free. ``bounds``: the obstacles' own bounding box ``(low, high)``, or None when there is
    no obstacle. Padding is a vectorised dilation (a running OR of 2p+1 shifted copies along
    each axis), so building it costs a few ms where reading the world as a dict costs about
    100 ms on the standard world; blocked answers are the same as ``blocked_test``'s.
    """

    __slots__ = ("low", "shape", "occupied", "bounds", "padding")

    def __init__(self, low, shape, occupied, bounds, padding: int):
        self.low, self.shape, self.occupied = low, shape, occupied
        self.bounds, self.padding = bounds, padding

    @classmethod
    def from_arrays(cls, coords: np.ndarray, bits: np.ndarray,
                    padding: int) -> "Obstacles | None":
        """From a world's coords (N×3) and bits (N); None when the box would be too large."""
        padding = max(int(padding), 0)
        bits = np.asarray(bits).reshape(-1)
        hit = (bits & np.asarray(OBSTACLE_BITS, dtype=bits.dtype)) != 0
        # Axis-major copy: reductions and arithmetic then run over contiguous rows.
        points = np.ascontiguousarray(np.asarray(coords).reshape(-1, 3).T)[:, hit]
        if points.shape[1] == 0:
            return cls((0, 0, 0), (0, 0, 0), b"", None, padding)
        low_obstacle = points.min(axis=1).astype(np.int64)
        high_obstacle = points.max(axis=1).astype(np.int64)
        low = low_obstacle - padding
        shape = high_obstacle + padding - low + 1
        if float(shape[0]) * float(shape[1]) * float(shape[2]) > MAX_OCCUPANCY_CELLS:
            return None
        nx, ny, nz = (int(n) for n in shape)
        occupied = np.zeros(nx * ny * nz, dtype=bool)
        occupied[((points[0] - low[0]) * ny + (points[1] - low[1])) * nz
                 + (points[2] - low[2])] = True
        occupied = dilate(occupied.reshape(nx, ny, nz), padding)
        bounds = (tuple(int(v) for v in low_obstacle), tuple(int(v) for v in high_obstacle))
        # A memoryview of the bytes: indexing it gives a Python int about as fast as a dict probe.
        return cls(tuple(int(v) for v in low), (nx, ny, nz), _read_only_bytes(occupied),
                   bounds, padding)

    @classmethod
    def from_dense(cls, dense, padding: int) -> "Obstacles":
        """From a world's ``DenseCells`` (``world._dense()``), which an episode has built
        anyway for its collision queries: no scatter, the box is cut from it."""
        padding = max(int(padding), 0)
        occupied = ((dense.values & np.uint32(OBSTACLE_BITS)) != 0).reshape(dense.shape)
        spans = [np.flatnonzero(occupied.any(axis=tuple(a for a in range(3) if a != axis)))
                 for axis in range(3)]
        if len(spans[0]) == 0:
            return cls((0, 0, 0), (0, 0, 0), b"", None, padding)
        first = [int(span[0]) for span in spans]
        last = [int(span[-1]) for span in spans]
        occupied = occupied[first[0]:last[0] + 1, first[1]:last[1] + 1, first[2]:last[2] + 1]
        if padding:
            occupied = dilate(np.pad(occupied, padding), padding)
        occupied = np.ascontiguousarray(occupied)
        low_obstacle = tuple(lo + f for lo, f in zip(dense.low, first))
        high_obstacle = tuple(lo + l for lo, l in zip(dense.low, last))
        low = tuple(c - padding for c in low_obstacle)
        return cls(low, occupied.shape, _read_only_bytes(occupied),
                   (low_obstacle, high_obstacle), padding)

    @classmethod
    def from_cells(cls, cells: dict, padding: int) -> "Obstacles | None":
        """From a dict ``{(x, y, z): bits}``."""
        n = len(cells)
        coords = np.array(list(cells.keys()), dtype=np.int64).reshape(n, 3)
        bits = np.fromiter(cells.values(), dtype=np.int64, count=n)
        return cls.from_arrays(coords, bits, padding)

    def blocked_test(self, w: int):
        """``(answers, blocked)`` as ``blocked_test`` gives them; ``answers.get`` answers every
        key at once (True/False as 1/0), so ``blocked`` is never needed by the search."""
        occupied = self.occupied
        off, mask, w2 = 1 << (w - 1), (1 << w) - 1, 2 * w
        ox, oy, oz = (off + c for c in self.low)
        nx, ny, nz = self.shape

        def blocked(k):
            x = (k >> w2) - ox
            if 0 <= x < nx:
                y = ((k >> w) & mask) - oy
                if 0 <= y < ny:
                    z = (k & mask) - oz
                    if 0 <= z < nz:
                        return occupied[(x * ny + y) * nz + z]
            return 0

        return _AllKnown(blocked), blocked


def _read_only_bytes(occupied: np.ndarray) -> memoryview:
    """A read-only byte view of a bool occupancy box: copies of a world share it."""
    return memoryview(occupied.view(np.uint8).reshape(-1)).toreadonly()


class _AllKnown:
    """Stands in for the answers dict when every answer is one lookup away."""

    __slots__ = ("get",)

    def __init__(self, get):
        self.get = get


def dilate(occupied: np.ndarray, padding: int) -> np.ndarray:
    """Boolean ``occupied`` grown by ``padding`` cells in Chebyshev distance (a cube), same shape.

    Separable: along each axis in turn, a cell is set when any cell within ``padding`` of it
    on that axis is set.
    """
    for axis in range(occupied.ndim):
        if padding <= 0 or occupied.shape[axis] <= 1:
            continue
        grown = occupied.copy()
        n = occupied.shape[axis]
        for d in range(1, min(padding, n - 1) + 1):
            ahead = [slice(None)] * occupied.ndim
            behind = [slice(None)] * occupied.ndim
            ahead[axis], behind[axis] = slice(d, None), slice(None, n - d)
            grown[tuple(ahead)] |= occupied[tuple(behind)]
            grown[tuple(behind)] |= occupied[tuple(ahead)]
        occupied = grown
    return occupied


def segment_distance(origin: tuple, dst: tuple):
    """A function ``coord -> int``: distance to segment origin→dst, ×1000, rounded (Rust)."""
    ax, ay, az = float(origin[0]), float(origin[1]), float(origin[2])
    vx, vy, vz = dst[0] - ax, dst[1] - ay, dst[2] - az
    vv = vx * vx + vy * vy + vz * vz
    sqrt, floor = math.sqrt, math.floor

    def distance(p):
        wx, wy, wz = p[0] - ax, p[1] - ay, p[2] - az
        if vv <= 1e-9:
            t = 0.0
        else:
            t = (wx * vx + wy * vy + wz * vz) / vv
            t = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
        dx = p[0] - (ax + t * vx)
        dy = p[1] - (ay + t * vy)
        dz = p[2] - (az + t * vz)
        scaled = sqrt(dx * dx + dy * dy + dz * dz) * DIST_SCALE
        whole = floor(scaled)
        return int(whole) + (1 if scaled - whole >= 0.5 else 0)  # f64::round, half away from 0

    return distance


def obstacle_bounds(cells: dict):
    """``((xmin, ymin, zmin), (xmax, ymax, zmax))`` of the obstacle cells, or None if none."""
    obstacles = [c for c, bits in cells.items() if bits & OBSTACLE_BITS]
    if not obstacles:
        return None
    xs, ys, zs = zip(*obstacles)
    return (min(xs), min(ys), min(zs)), (max(xs), max(ys), max(zs))


def region_excludes(start: int, goal: int, answers: dict, blocked, limit: int,
                    box, w: int) -> bool:
    """True when the free region around ``start`` is closed (≤ limit cells) and lacks ``goal``.

    Keys are packed (width ``w``). ``box``: packed-field bounds ``(low, high)`` outside which
    every cell is free, or None when the world has no obstacle; a region reaching outside it is
    unbounded, so the answer is False at once. The answer depends only on the region, not on
    the order of the fill.
    """
    if box is None:
        return False
    (lx, ly, lz), (hx, hy, hz) = box
    mask, w2, sx, sy = (1 << w) - 1, 2 * w, 1 << (2 * w), 1 << w
    known = answers.get
    seen = {start}
    frontier = [start]
    while frontier:
        k = frontier.pop()
        if not (lx <= k >> w2 <= hx and ly <= (k >> w) & mask <= hy and lz <= k & mask <= hz):
            return False
        for nb in (k + sx, k - sx, k + sy, k - sy, k + 1, k - 1):
            if nb in seen:
                continue
            hit = known(nb)
            if hit is None:
                hit = blocked(nb)
            if hit:
                continue
            if nb == goal:
                return False
            seen.add(nb)
            if len(seen) > limit:
                return False
            frontier.append(nb)
    return True


def search(cells, origin: tuple, dst: tuple, padding: int,
           memo: dict | None = None) -> list:
    """The move sequence voxelsim's A* returns for this world, or ``PlannerError``.

    ``cells``: the world as a dict ``{(x, y, z): bits}``, or its ``Obstacles`` for this
    ``padding`` (same answers, no dict needed).

    ``memo``: a dict kept with the (unchanged) world, one per padding, so repeated plans reuse
    blocked tests.

    Costs are packed into ints whose order is the reference's: ``f = (steps + h) << db | dist``
    (``h`` the Manhattan distance to dst, ``dist`` the summed segment distances, always below
    ``2**db``), and a heap entry is ``f << 3w | ~key`` (the complemented key pops the largest
    x, then y, then z first on equal f). h is fixed per cell, so comparing f compares
    (steps, dist); a step changes f by the neighbour's segment distance plus 0 (towards dst on
    that axis) or 2 << db (away). ``base`` keeps, per cell, the best f minus the cell's own
    segment distance, so testing a move costs one dict probe and one comparison.
    """
    if origin == dst:
        raise PlannerError(INVALID_PARAMS)
    memo = {} if memo is None else memo
    w = field_width(origin, dst, padding)
    if isinstance(cells, Obstacles):
        answers, blocked = cells.blocked_test(w)
    else:
        answers, blocked = blocked_test(cells, padding, w, memo)
    known = answers.get
    okey, dkey = pack(origin, w), pack(dst, w)
    if known(okey) or blocked(okey):
        raise PlannerError(PATH_BLOCKED)
    if known(dkey) or blocked(dkey):
        raise PlannerError(NO_VIABLE_PATH)
    cap = MAX_EXPANSIONS
    off, mask, w2, sh = 1 << (w - 1), (1 << w) - 1, 2 * w, 3 * w
    sx, sy = 1 << w2, 1 << w
    kall = (1 << sh) - 1
    # A distance is below 1000 * 2 * 2**w; a path has at most cap + 1 cells.
    db = (cap + 1).bit_length() + w + 11
    two = 2 << db
    tx, ty, tz = dst[0] + off, dst[1] + off, dst[2] + off
    ax, ay, az = float(origin[0]), float(origin[1]), float(origin[2])
    vx, vy, vz = dst[0] - ax, dst[1] - ay, dst[2] - az
    vv = vx * vx + vy * vy + vz * vz  # >= 1: origin != dst
    sqrt, floor = math.sqrt, math.floor
    f0 = (abs(origin[0] - dst[0]) + abs(origin[1] - dst[1]) + abs(origin[2] - dst[2])) << db
    seg = {okey: 0}  # key -> scaled distance to the segment (free cells seen by this search)
    # key -> f of the best known path minus the cell's own segment distance, -1 when blocked:
    # a neighbour improves on it when f(current) + step cost < that value, one probe per move.
    base = {okey: f0}
    base_get = base.get
    came_from: dict = {}
    heap = [(f0 << sh) | (kall ^ okey)]
    pop, push = heapq.heappop, heapq.heappush

    def discover(k, b, parent):
        """A cell not seen before, reached with ``b`` = f(parent) + step cost."""
        hit = known(k)
        if hit is None:
            hit = blocked(k)
        if hit:
            base[k] = -1
            return
        x, y, z = (k >> w2) - off, ((k >> w) & mask) - off, (k & mask) - off
        t = ((x - ax) * vx + (y - ay) * vy + (z - az) * vz) / vv  # as in segment_distance
        t = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
        dx = x - (ax + t * vx)
        dy = y - (ay + t * vy)
        dz = z - (az + t * vz)
        scaled = sqrt(dx * dx + dy * dy + dz * dz) * DIST_SCALE
        whole = floor(scaled)
        seg[k] = d = int(whole) + (1 if scaled - whole >= 0.5 else 0)
        base[k] = b
        came_from[k] = parent
        push(heap, ((b + d) << sh) | (kall ^ k))

    def improve(k, b, parent):
        base[k] = b
        came_from[k] = parent
        push(heap, ((b + seg[k]) << sh) | (kall ^ k))

    checks = list(_ENCLOSURE_CHECKS)
    next_check = checks[0][0]
    expansions = 0
    while heap:
        entry = pop(heap)
        f = entry >> sh
        key = kall ^ (entry & kall)
        if base[key] + seg[key] != f:
            continue  # stale entry
        if key == dkey:
            return _reconstruct(came_from, dkey, okey, w)
        expansions += 1
        if expansions > cap:
            break
        if expansions == next_check:
            _, limit = checks.pop(0)
            next_check = checks[0][0] if checks else -1
            if region_excludes(dkey, okey, answers, blocked, limit,
                               _field_box(cells, memo, padding, off), w):
                break
        fx, fy, fz = key >> w2, (key >> w) & mask, key & mask
        away = f + two
        # The six neighbours, unrolled, in the reference's order +x, -x, +y, -y, +z, -z.
        b = f if fx < tx else away
        nb = key + sx
        old = base_get(nb)
        if old is None:
            discover(nb, b, key)
        elif b < old:
            improve(nb, b, key)
        b = f if fx > tx else away
        nb = key - sx
        old = base_get(nb)
        if old is None:
            discover(nb, b, key)
        elif b < old:
            improve(nb, b, key)
        b = f if fy < ty else away
        nb = key + sy
        old = base_get(nb)
        if old is None:
            discover(nb, b, key)
        elif b < old:
            improve(nb, b, key)
        b = f if fy > ty else away
        nb = key - sy
        old = base_get(nb)
        if old is None:
            discover(nb, b, key)
        elif b < old:
            improve(nb, b, key)
        b = f if fz < tz else away
        nb = key + 1
        old = base_get(nb)
        if old is None:
            discover(nb, b, key)
        elif b < old:
            improve(nb, b, key)
        b = f if fz > tz else away
        nb = key - 1
        old = base_get(nb)
        if old is None:
            discover(nb, b, key)
        elif b < old:
            improve(nb, b, key)
    raise PlannerError(NO_VIABLE_PATH)


def _field_box(cells, memo: dict, padding: int, off: int):
    """The obstacles' bounding box grown by ``padding``, in packed-field values (or None)."""
    if isinstance(cells, Obstacles):
        bounds = cells.bounds
    else:
        if "bounds" not in memo:
            memo["bounds"] = obstacle_bounds(cells)
        bounds = memo["bounds"]
    if bounds is None:
        return None
    low, high = bounds
    return (tuple(c + off - padding for c in low), tuple(c + off + padding for c in high))


def _reconstruct(came_from: dict, dkey: int, okey: int, w: int) -> list:
    steps = {(dx << (2 * w)) + (dy << w) + dz: move for dx, dy, dz, move in NEIGHBOURS}
    moves = []
    current = dkey
    while current != okey:
        prev = came_from.get(current)
        if prev is None:
            break
        moves.append(steps[current - prev])
        current = prev
    moves.reverse()
    return moves


# --- bound class -----------------------------------------------------------------------------
PLAN_CACHE_SIZE = 256   # results kept per world and padding


def _planned(world: VoxelGrid, origin: tuple, dst: tuple, padding: int):
    """The move list from origin to dst, or the ``PlannerError``; remembered per unchanged world.

    Policies often re-plan the same route every step, and a failing search (up to 200,000
    expansions) costs this Python planner a second or more where voxelsim's takes milliseconds.
    The search is deterministic, so while the world is unchanged (``_derived()`` is emptied on
    every change) a repeated question gets the remembered answer.
    """
    derived = world._derived()
    results = derived.setdefault(("astar-results", padding), {})
    key = (origin, dst)
    outcome = results.get(key)
    if outcome is None:
        memo = derived.setdefault(("astar-blocked", padding), {})
        try:
            outcome = tuple(search(_obstacles(world, padding), origin, dst, padding, memo))
        except PlannerError as error:
            outcome = error
        if len(results) >= PLAN_CACHE_SIZE:
            results.pop(next(iter(results)))
        results[key] = outcome
    return outcome if isinstance(outcome, PlannerError) else list(outcome)


def _obstacles(world: VoxelGrid, padding: int):
    """What the search reads: the world's ``Obstacles`` for ``padding`` while it is
    array-backed (built once per world and padding, kept with its dense cells, so every copy
    a world cache hands out shares them, until that copy changes), else its dict."""
    if world._dict is not None:
        return world._cells()
    dense = world._dense()
    derived = dense.derived if dense is not None else world._derived()
    key = ("astar-obstacles", padding)
    if key not in derived:
        if dense is not None:
            derived[key] = Obstacles.from_dense(dense, padding)
        else:
            coords, bits = world._arrays()
            derived[key] = Obstacles.from_arrays(coords, bits, padding)
    obstacles = derived[key]
    return world._cells() if obstacles is None else obstacles


def prepare_obstacles(world, paddings=(0, 1)) -> None:
    """Build an embedded world's obstacles for these paddings now, each in a mapping of its
    own (a process that forks episodes does it once, before forking); anything else is left
    alone.

    In a mapping of its own (anonymous, shared, read-only once written), an occupancy box
    leaves the address space of a forked process that drops the world, whatever the heap's
    allocator did with the temporaries that built it; and fork copies no page tables for it."""
    if type(world) is not VoxelGrid or world._dict is not None:
        return
    dense = world._dense()
    for padding in paddings:
        obstacles = _obstacles(world, max(int(padding), 0))
        if dense is not None and isinstance(obstacles, Obstacles) and len(obstacles.occupied):
            dense.derived[("astar-obstacles", obstacles.padding)] = _in_own_mapping(obstacles)


def _in_own_mapping(obstacles: Obstacles) -> Obstacles:
    """The same obstacles, their occupancy copied into an anonymous shared mapping and
    viewed read-only."""
    import mmap
    mapped = mmap.mmap(-1, len(obstacles.occupied))
    mapped[:] = obstacles.occupied
    return Obstacles(obstacles.low, obstacles.shape, memoryview(mapped).toreadonly(),
                     obstacles.bounds, obstacles.padding)


class AStarActionPlanner(Sealed):
    """``AStarActionPlanner(padding)``; a negative padding counts as 0 (see module docstring)."""

    __slots__ = ("_padding",)

    def __init__(self, padding):
        self._padding = max(to_int(padding, "padding", "i32"), 0)

    def plan_action_py(self, world, origin, dst, urgency, yaw) -> ActionIntent:
        """An ``ActionIntent(urgency, yaw, moves)`` from origin to dst, or ``Exception``."""
        world = to_instance(world, VoxelGrid, "world")
        origin = to_coord(origin, "origin")
        dst = to_coord(dst, "dst")
        urgency = to_float(urgency, "urgency")
        yaw = to_float(yaw, "yaw")
        outcome = _planned(world, origin, dst, self._padding)
        if isinstance(outcome, PlannerError):
            raise Exception(f"Failed to create action intent: {outcome.reason}")
        return ActionIntent(urgency, yaw, outcome)

    def __repr__(self) -> str:
        return f"AStarActionPlanner(padding={self._padding})"
