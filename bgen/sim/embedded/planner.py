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
reference would search until exhausted or capped and fail with the same error.
"""

from __future__ import annotations

import heapq
import math

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
_MOVE_OF_DELTA = {(dx, dy, dz): move for dx, dy, dz, move in NEIGHBOURS}

# Flood-fill checks of the destination's free region: (after this many expansions, cell limit).
_ENCLOSURE_CHECKS = ((5_000, 5_000), (40_000, 400_000))


class PlannerError(Exception):
    """Why a plan failed; ``reason`` is voxelsim's ``PlannerError`` Display text."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- pure search -----------------------------------------------------------------------------
def blocked_test(cells: dict, padding: int, memo: dict | None = None):
    """``(answers, blocked)``: a dict of known answers and a function ``coord -> bool``.

    ``blocked(c)`` says whether the cell is blocked for this padding and records the answer in
    ``answers`` (callers may read ``answers`` first, to skip the call). Pass the same ``memo``
    again for the same, unchanged world to reuse the answers. The padded cube test is split
    into memoized z-rows.
    """
    get = cells.get
    memo = {} if memo is None else memo
    answers = memo.setdefault("cells", {})
    if padding <= 0:
        def blocked(c):
            hit = answers[c] = bool(get(c, 0) & OBSTACLE_BITS)
            return hit
        return answers, blocked
    span = range(-padding, padding + 1)
    rows = memo.setdefault("rows", {})  # (x, y, z) -> obstacle among (x, y, z - p .. z + p)

    def row(x, y, z):
        key = (x, y, z)
        hit = rows.get(key)
        if hit is None:
            hit = False
            for dz in span:
                if get((x, y, z + dz), 0) & OBSTACLE_BITS:
                    hit = True
                    break
            rows[key] = hit
        return hit

    def blocked(c):
        hit = answers.get(c)
        if hit is None:
            x, y, z = c
            hit = answers[c] = any(row(x + dx, y + dy, z) for dx in span for dy in span)
        return hit

    return answers, blocked


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


def region_excludes(start: tuple, goal: tuple, blocked, limit: int) -> bool:
    """True when the free region around ``start`` is closed (≤ limit cells) and lacks ``goal``."""
    seen = {start}
    frontier = [start]
    while frontier:
        x, y, z = frontier.pop()
        for dx, dy, dz, _ in NEIGHBOURS:
            nb = (x + dx, y + dy, z + dz)
            if nb in seen or blocked(nb):
                continue
            if nb == goal:
                return False
            seen.add(nb)
            if len(seen) > limit:
                return False
            frontier.append(nb)
    return True


def search(cells: dict, origin: tuple, dst: tuple, padding: int,
           memo: dict | None = None) -> list:
    """The move sequence voxelsim's A* returns for this world, or ``PlannerError``.

    ``memo``: a dict kept with the (unchanged) world, so repeated plans reuse blocked tests.
    """
    if origin == dst:
        raise PlannerError(INVALID_PARAMS)
    answers, blocked = blocked_test(cells, padding, memo)
    known = answers.get
    if blocked(origin):
        raise PlannerError(PATH_BLOCKED)
    if blocked(dst):
        raise PlannerError(NO_VIABLE_PATH)
    distance = segment_distance(origin, dst)
    tx, ty, tz = dst
    ox, oy, oz = origin
    best = {origin: (0, 0)}  # node -> (steps, distance sum) of the best known path
    came_from: dict = {}
    # Heap entries (f_steps, f_dist, -x, -y, -z, g_steps): f_dist is g_dist (the distance term
    # has no heuristic); negated coordinates make the min-heap prefer the largest x, y, z.
    heap = [(abs(ox - tx) + abs(oy - ty) + abs(oz - tz), 0, -ox, -oy, -oz, 0)]
    pop, push = heapq.heappop, heapq.heappush
    best_get = best.get
    seg = {}  # node -> scaled distance to the segment
    seg_get = seg.get
    checks = list(_ENCLOSURE_CHECKS)
    next_check = checks[0][0]
    expansions = 0
    while heap:
        _, g_dist, nx, ny, nz, g_steps = pop(heap)
        x, y, z = -nx, -ny, -nz
        current = (x, y, z)
        if best[current] != (g_steps, g_dist):
            continue  # stale entry
        if current == dst:
            return _reconstruct(came_from, dst, origin)
        expansions += 1
        if expansions > MAX_EXPANSIONS:
            break
        if expansions == next_check:
            _, limit = checks.pop(0)
            next_check = checks[0][0] if checks else -1
            if region_excludes(dst, origin, blocked, limit):
                break
        steps = g_steps + 1
        for nb in ((x + 1, y, z), (x - 1, y, z), (x, y + 1, z),
                   (x, y - 1, z), (x, y, z + 1), (x, y, z - 1)):
            hit = known(nb)
            if hit is None:
                hit = blocked(nb)
            if hit:
                continue
            d = seg_get(nb)
            if d is None:
                d = seg[nb] = distance(nb)
            total = g_dist + d
            old = best_get(nb)
            if old is None or steps < old[0] or (steps == old[0] and total < old[1]):
                came_from[nb] = current
                best[nb] = (steps, total)
                bx, by, bz = nb
                push(heap, (steps + abs(bx - tx) + abs(by - ty) + abs(bz - tz), total,
                            -bx, -by, -bz, steps))
    raise PlannerError(NO_VIABLE_PATH)


def _reconstruct(came_from: dict, dst: tuple, origin: tuple) -> list:
    moves = []
    current = dst
    while current != origin:
        prev = came_from.get(current)
        if prev is None:
            break
        moves.append(_MOVE_OF_DELTA[(current[0] - prev[0], current[1] - prev[1],
                                     current[2] - prev[2])])
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
            outcome = tuple(search(world._cells(), origin, dst, padding, memo))
        except PlannerError as error:
            outcome = error
        if len(results) >= PLAN_CACHE_SIZE:
            results.pop(next(iter(results)))
        results[key] = outcome
    return outcome if isinstance(outcome, PlannerError) else list(outcome)


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
