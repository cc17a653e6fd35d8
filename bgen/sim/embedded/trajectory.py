"""The flight path of an action: a B-spline through the smoothed cell centroids.

Model (voxelsim ``voxelsim/src/agent/trajectory.rs``):

1. The cells are the action's origin followed by every centroid the moves reach.
2. Twenty smoothing passes move each interior point halfway towards its projection on the
   segment joining its neighbours, never leaving its own unit cell (the move is pulled back to
   the first cell face it crosses). The end points never move.
3. The smoothed points are the control points of a clamped B-spline of degree
   ``min(3, n - 1)`` with uniform interior knots on [0, 1].
4. ``waypoints[i]`` is the polyline length from the origin to control point ``i``;
   ``length = waypoints[-1]``. Progress ``t`` (metres along that polyline) maps linearly to
   the spline parameter ``u = t / length``; ``u`` at or beyond the domain end is evaluated at
   ``end - 1e-9``.
5. ``urgencies`` / ``yaw_seq`` pair ``waypoints[i + 1]`` with the urgency / yaw of the intent
   that produced cell ``i``; sampling interpolates linearly between pairs.

Serde form (voxelsim's ``SplineData``; the attribute names here are the field names, in order):

    degree      int
    knots       list[float]                 len(ctrl_pts) + degree + 1 values
    ctrl_pts    list[tuple[float, float, float]]
    urgencies   list[tuple[float, float]]   (progress, urgency)
    yaw_seq     list[tuple[float, float]]   (progress, yaw)
    waypoints   list[float]
    progress    float                       current progress (metres)
    length      float

``Trajectory.from_spline_data(...)`` rebuilds one from those fields (a decoder's entry point).

Evaluation is precomputed per trajectory: every knot span is converted to a cubic polynomial
per axis (power basis in the local parameter), so a point costs one ``bisect`` and three
Horner evaluations in plain Python floats. Where voxelsim evaluates with de Boor's algorithm
the results agree to rounding (and are exact where the control points of a span share a
coordinate).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from functools import lru_cache

from bgen.sim.embedded.convert import PanicException

EPSILON = 2.220446049250313e-16  # f64::EPSILON
_NAN = float("nan")
_INF = float("inf")
SMOOTHING_PASSES = 20
DOMAIN_END_EPS = 1e-9
# The nearest-point search keeps spans farther than this (plus the current best distance)
# out of consideration until the query point has moved by about this much.
_PRUNE_SLACK = 1.0


def _div(a: float, b: float) -> float:
    """IEEE division (Rust semantics): x/0 is ±inf, 0/0 and nan/0 are nan."""
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0.0:
            return _NAN
        return math.copysign(_INF, a) * math.copysign(1.0, b)


def _clamp01(x: float) -> float:
    """``f64::clamp(x, 0.0, 1.0)``: nan stays nan."""
    if x < 0.0:
        return 0.0
    if x > 1.0:
        return 1.0
    return x


# --- smoothing (pure functions of the cell list) -----------------------------------------

def _project_onto_segment(p, a, b):
    abx, aby, abz = b[0] - a[0], b[1] - a[1], b[2] - a[2]
    apx, apy, apz = p[0] - a[0], p[1] - a[1], p[2] - a[2]
    t = _clamp01(_div(abx * apx + aby * apy + abz * apz, abx * abx + aby * aby + abz * abz))
    return (a[0] + abx * t, a[1] + aby * t, a[2] + abz * t)


def _first_surface_intersection(p0, p1, bmin, bmax):
    """First point where segment p0→p1 meets the box surface, or None (slab method)."""
    d = (p1[0] - p0[0], p1[1] - p0[1], p1[2] - p0[2])
    t_enter, t_exit = -_INF, _INF
    for i in range(3):
        di = d[i]
        if abs(di) < 1e-12:
            if p0[i] < bmin[i] or p0[i] > bmax[i]:
                return None
        else:
            t0 = (bmin[i] - p0[i]) / di
            t1 = (bmax[i] - p0[i]) / di
            if t0 > t1:
                t0, t1 = t1, t0
            if t0 > t_enter:  # f64::max ignores nan, and so does this comparison
                t_enter = t0
            if t1 < t_exit:
                t_exit = t1
            if t_enter > t_exit:
                return None
    if 0.0 <= t_enter <= 1.0:
        return (p0[0] + d[0] * t_enter, p0[1] + d[1] * t_enter, p0[2] + d[2] * t_enter)
    if t_enter < 0.0 and 0.0 <= t_exit <= 1.0:
        return (p0[0] + d[0] * t_exit, p0[1] + d[1] * t_exit, p0[2] + d[2] * t_exit)
    return None


def smooth_cells(cells, passes: int = SMOOTHING_PASSES) -> list:
    """The constrained smoothing of voxelsim (``solve_constrained_smoothing``), Jacobi style.

    A point whose neighbours and itself did not move in the previous pass would get the same
    result again, so it is skipped: exact, and most of a straight path is never recomputed.
    """
    path = [(float(c[0]), float(c[1]), float(c[2])) for c in cells]
    n = len(path)
    if n < 3:
        return path
    changed = [True] * n
    for _ in range(passes):
        new_path = list(path)
        new_changed = [False] * n
        any_changed = False
        for i in range(1, n - 1):
            if not (changed[i - 1] or changed[i] or changed[i + 1]):
                continue
            p = path[i]
            m = _project_onto_segment(p, path[i - 1], path[i + 1])
            t = (m[0] * 0.5 + p[0] * 0.5, m[1] * 0.5 + p[1] * 0.5, m[2] * 0.5 + p[2] * 0.5)
            c = cells[i]
            if (abs(p[0] - c[0]) < 0.5 and abs(p[1] - c[1]) < 0.5 and abs(p[2] - c[2]) < 0.5
                    and abs(t[0] - c[0]) <= 0.5 and abs(t[1] - c[1]) <= 0.5
                    and abs(t[2] - c[2]) <= 0.5):
                q = t  # both inside the cell and p off its faces: the segment crosses no face
            else:
                bmin = (c[0] - 0.5, c[1] - 0.5, c[2] - 0.5)
                bmax = (c[0] + 0.5, c[1] + 0.5, c[2] + 0.5)
                hit = _first_surface_intersection(t, p, bmin, bmax)
                q = hit if hit is not None else t
            new_path[i] = q
            if q != p:
                new_changed[i] = any_changed = True
        path, changed = new_path, new_changed
        if not any_changed:
            break
    return path


def control_waypoints(origin, path) -> list:
    """Cumulative polyline length from ``origin`` through ``path``."""
    total = 0.0
    last = origin
    out = []
    for p in path:
        total += math.sqrt((p[0] - last[0]) ** 2 + (p[1] - last[1]) ** 2 + (p[2] - last[2]) ** 2)
        out.append(total)
        last = p
    return out


def uniform_knots(num_ctrl: int, degree: int) -> list:
    """Open-clamped knots: degree+1 zeros, uniform interior, degree+1 ones."""
    knots = [0.0] * (degree + 1)
    if num_ctrl > degree + 1:
        interior = num_ctrl - degree - 1
        knots.extend(i / (interior + 1) for i in range(1, interior + 1))
    knots.extend([1.0] * (degree + 1))
    return knots


# --- span polynomials ----------------------------------------------------------------------

def _poly_lerp(p0, p1, a0, a1):
    """p0 + (a0 + a1 w) (p1 - p0) for coefficient lists (constant term first)."""
    diff = [y - x for x, y in zip(p0, p1)]
    out = [x + a0 * d for x, d in zip(p0, diff)] + [0.0]
    for j, d in enumerate(diff):
        out[j + 1] += a1 * d
    return out


@lru_cache(maxsize=256)
def _span_bases(degree: int, knots: tuple) -> tuple:
    """Per non-empty span: (knot index above it, u0, u1, basis polynomials of ctrl 1..degree).

    Running de Boor's recurrence on polynomials with a one-hot control point ``j`` gives the
    basis function of that control point on the span as a cubic in ``w = u - u0``. The knots
    depend only on the number of control points, so this is computed once per path length.
    """
    out = []
    n_ctrl = len(knots) - degree - 1
    for i in range(degree + 1, n_ctrl + 1):  # the knot index just above the span
        u0, u1 = knots[i - 1], knots[i]
        if not u1 > u0:
            continue
        bases = []
        for one in range(1, degree + 1):
            tmp = [[1.0 if j == one else 0.0] for j in range(degree + 1)]
            for lvl in range(degree):
                k = lvl + 1
                for j in range(degree - lvl):
                    idx = j + k + i - degree
                    lo, hi = knots[idx - 1], knots[idx + degree - k]
                    denom = hi - lo
                    tmp[j] = _poly_lerp(tmp[j], tmp[j + 1], _div(u0 - lo, denom), _div(1.0, denom))
            bases.append(tuple(tmp[0] + [0.0] * (4 - len(tmp[0])))[:4])
        out.append((i, u0, u1, tuple(bases)))
    return tuple(out)


def _span_polynomials(degree, knots, ctrl_pts):
    """(span start u, span end u, 12 coefficients) for every non-empty knot span.

    The coefficients are (x0, x1, x2, x3, y0, ..., z3) of the span's point as a cubic in
    ``w = u - span start``. They are built as ``P0 + Σ B_j (P_j - P0)`` (the basis sums to
    one), so a coordinate shared by the span's control points comes out exactly constant.
    """
    spans = []
    for i, u0, u1, bases in _span_bases(degree, tuple(knots)):
        first = i - degree - 1
        p0 = ctrl_pts[first]
        coeffs = []
        for axis in range(3):
            base = p0[axis]
            c = [base, 0.0, 0.0, 0.0]
            for j, basis in enumerate(bases, start=1):
                diff = ctrl_pts[first + j][axis] - base
                if diff != 0.0:
                    c[0] += basis[0] * diff
                    c[1] += basis[1] * diff
                    c[2] += basis[2] * diff
                    c[3] += basis[3] * diff
            coeffs.extend(c)
        spans.append((u0, u1, tuple(coeffs)))
    return spans


def _eval(c, w):
    """Point of a span polynomial at local parameter ``w``."""
    return (c[0] + w * (c[1] + w * (c[2] + w * c[3])),
            c[4] + w * (c[5] + w * (c[6] + w * c[7])),
            c[8] + w * (c[9] + w * (c[10] + w * c[11])))


def _seg_distance(p, a, b):
    abx, aby, abz = b[0] - a[0], b[1] - a[1], b[2] - a[2]
    apx, apy, apz = p[0] - a[0], p[1] - a[1], p[2] - a[2]
    ab2 = abx * abx + aby * aby + abz * abz
    t = 0.0 if ab2 <= 0.0 else _clamp01((abx * apx + aby * apy + abz * apz) / ab2)
    dx, dy, dz = apx - abx * t, apy - aby * t, apz - abz * t
    return math.sqrt(dx * dx + dy * dy + dz * dz)


def _span_bounds(u0, u1, c):
    """Bounding data of a span: chord ends, tube radius around the chord, sphere centre+radius.

    The span lies in the convex hull of its Bézier control points, so every point of it is
    within ``tube`` of the chord and within ``radius`` of ``centre``.
    """
    h = u1 - u0
    b0 = _eval(c, 0.0)
    b3 = _eval(c, h)
    b1 = tuple(c[4 * a] + c[4 * a + 1] * h / 3.0 for a in range(3))
    b2 = tuple(c[4 * a] + 2.0 * c[4 * a + 1] * h / 3.0 + c[4 * a + 2] * h * h / 3.0
               for a in range(3))
    tube = max(_seg_distance(b1, b0, b3), _seg_distance(b2, b0, b3))
    centre = tuple((b0[a] + b1[a] + b2[a] + b3[a]) / 4.0 for a in range(3))
    radius = max(math.dist(centre, b) for b in (b0, b1, b2, b3))
    return b0, b3, tube, centre, radius


def _sample_aux(keys, values, t):
    """voxelsim's ``sample_aux``: first key >= t; before it interpolate, past the end None."""
    n = len(keys)
    if n == 0:
        return None
    i1 = bisect_left(keys, t) if t == t else n
    if i1 == 0:
        return values[0]
    if i1 < n:
        k0 = keys[i1 - 1]
        w = _div(t - k0, keys[i1] - k0)
        return values[i1 - 1] * (1.0 - w) + values[i1] * w
    return None


class Trajectory:
    """A precomputed B-spline path with a progress cursor (see the module docstring)."""

    __slots__ = ("degree", "knots", "ctrl_pts", "urgencies", "yaw_seq", "waypoints",
                 "progress", "length",
                 "_umin", "_umax", "_span_u", "_spans", "_bounds", "_u_keys", "_u_vals",
                 "_y_keys", "_y_vals", "_tail", "_search")

    def __init__(self, *args, **kwargs):
        raise TypeError("No constructor defined for Trajectory")

    # --- construction ------------------------------------------------------------------
    @classmethod
    def build(cls, origin, cells) -> "Trajectory":
        """voxelsim's ``Trajectory::new(origin, cells)``; ``cells`` are (coord, urgency, yaw)."""
        grid = [tuple(origin)] + [c[0] for c in cells]
        path = smooth_cells(grid)
        origin_f = (float(origin[0]), float(origin[1]), float(origin[2]))
        waypoints = control_waypoints(origin_f, path)
        n = len(path)
        degree = min(3, max(n - 1, 0))
        knots = uniform_knots(n, degree)
        urgencies = [(waypoints[i + 1], float(c[1])) for i, c in enumerate(cells)]
        yaw_seq = [(waypoints[i + 1], float(c[2])) for i, c in enumerate(cells)]
        length = waypoints[-1] if waypoints else 0.0
        return cls.from_spline_data(degree, knots, path, urgencies, yaw_seq, waypoints,
                                    0.0, length)

    @classmethod
    def from_spline_data(cls, degree, knots, ctrl_pts, urgencies, yaw_seq, waypoints,
                         progress, length) -> "Trajectory":
        """Rebuild from the serde fields (also what ``build`` ends with)."""
        degree = int(degree)
        knots = [float(k) for k in knots]
        ctrl_pts = [(float(p[0]), float(p[1]), float(p[2])) for p in ctrl_pts]
        if len(ctrl_pts) <= degree:
            raise PanicException("Too few control points for curve")
        if len(knots) != len(ctrl_pts) + degree + 1:
            raise ValueError("Invalid knot/control-point lengths")
        knots.sort()
        self = object.__new__(cls)
        self.degree, self.knots, self.ctrl_pts = degree, knots, ctrl_pts
        self.urgencies = [(float(a), float(b)) for a, b in urgencies]
        self.yaw_seq = [(float(a), float(b)) for a, b in yaw_seq]
        self.waypoints = [float(w) for w in waypoints]
        self.progress, self.length = float(progress), float(length)
        self._umin, self._umax = knots[degree], knots[len(knots) - 1 - degree]
        spans = _span_polynomials(degree, knots, ctrl_pts)
        if not spans:  # degree 0 / empty domain: a constant point
            p = ctrl_pts[0]
            spans = [(self._umin, self._umax, (p[0], 0.0, 0.0, 0.0, p[1], 0.0, 0.0, 0.0,
                                               p[2], 0.0, 0.0, 0.0))]
        self._span_u = [s[0] for s in spans]
        self._spans = [(s[0], s[1] - s[0], s[2]) for s in spans]
        self._bounds = [_span_bounds(s[0], s[1], s[2]) for s in spans]
        self._u_keys = [k for k, _ in self.urgencies]
        self._u_vals = [v for _, v in self.urgencies]
        self._y_keys = [k for k, _ in self.yaw_seq]
        self._y_vals = [v for _, v in self.yaw_seq]
        self._tail = None
        self._search = None
        return self

    def copy(self) -> "Trajectory":
        """A copy sharing the immutable spline data; progress is the copy's own."""
        other = _new_trajectory(Trajectory)
        other.degree, other.knots, other.ctrl_pts = self.degree, self.knots, self.ctrl_pts
        other.urgencies, other.yaw_seq, other.waypoints = self.urgencies, self.yaw_seq, self.waypoints
        other.progress, other.length = self.progress, self.length
        other._umin, other._umax, other._span_u = self._umin, self._umax, self._span_u
        other._spans, other._bounds = self._spans, self._bounds
        other._u_keys, other._u_vals = self._u_keys, self._u_vals
        other._y_keys, other._y_vals = self._y_keys, self._y_vals
        other._tail, other._search = self._tail, None
        return other

    # --- evaluation --------------------------------------------------------------------
    def domain_u(self, t: float):
        """Spline parameter for progress ``t`` (voxelsim's ``domain_t``), or None."""
        length = self.length
        if length <= EPSILON:
            return None
        umin, umax = self._umin, self._umax
        u = umin + (umax - umin) * (t / length)
        if u >= umax:
            u = umax - DOMAIN_END_EPS
            if u < umin:
                u = umin
        if u < umin:
            return None
        return u

    def point_at_u(self, u: float):
        if u != u:
            return (_NAN, _NAN, _NAN)
        k = bisect_right(self._span_u, u) - 1
        if k < 0:
            k = 0
        u0, _, c = self._spans[k]
        w = u - u0
        return (c[0] + w * (c[1] + w * (c[2] + w * c[3])),
                c[4] + w * (c[5] + w * (c[6] + w * c[7])),
                c[8] + w * (c[9] + w * (c[10] + w * c[11])))

    def position(self, t: float):
        u = self.domain_u(t)
        return None if u is None else self.point_at_u(u)

    def velocity(self, t: float):
        """voxelsim's unit finite-difference direction (h = 0.01, window clamped to [0, 1]).

        The window is clamped to [0, 1] in progress units (metres), so for t >= 0.99 it is
        always the direction between progress 0.98 and 1.0; that value is cached.
        """
        if t >= 0.99:
            return self.tail_vectors()[0]
        return self._velocity(t)

    def _velocity(self, t: float):
        return self._unit_difference(self.position, t)

    def acceleration(self, t: float):
        """voxelsim's unit difference of two ``velocity`` samples (same window rule)."""
        if t >= 0.99:
            return self.tail_vectors()[1]
        return self._acceleration(t)

    def _acceleration(self, t: float):
        return self._unit_difference(self._velocity, t)

    @staticmethod
    def _unit_difference(sample, t: float):
        """Unit direction of ``sample(t + h) - sample(t - h)``, h = 0.01, window kept in [0, 1].

        voxelsim derives velocity from positions and acceleration from velocities this way.
        """
        h = 1e-2
        t_lo = max(t - h, 0.0)
        t_hi = min(t + h, 1.0)
        t_lo = min(t_lo, t_hi - 2.0 * h)
        t_hi = max(t_hi, t_lo + 2.0 * h)
        hi = sample(t_hi)
        lo = sample(t_lo)
        if hi is None or lo is None:
            return None
        dx, dy, dz = hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]
        norm = math.sqrt(dx * dx + dy * dy + dz * dz)
        if norm > EPSILON:
            return (dx / norm, dy / norm, dz / norm)
        return (0.0, 0.0, 0.0)

    def tail_vectors(self):
        """(velocity, acceleration) for any t >= 0.99, computed once per trajectory."""
        tail = self._tail
        if tail is None:
            tail = self._tail = (self._velocity(1.0), self._acceleration(1.0))
        return tail

    def sample_urgencies(self, t: float):
        return _sample_aux(self._u_keys, self._u_vals, t)

    def sample_yaw(self, t: float):
        return _sample_aux(self._y_keys, self._y_vals, t)

    # --- progress <-> move index ---------------------------------------------------------
    def progress_for_move_idx(self, i: int):
        return self.waypoints[i] if 0 <= i < len(self.waypoints) else None

    def progress_for_move(self, m: float):
        if not m >= 0.0:
            raise PanicException("assertion failed: m >= 0.0")
        if m == 0.0:
            return 0.0
        i0, i1 = math.floor(m), math.ceil(m)
        if i1 >= len(self.waypoints):
            return None
        p0, p1 = self.waypoints[i0], self.waypoints[i1]
        return p0 + math.fmod(m, 1.0) * (p1 - p0)

    def move_for_progress(self, progress: float):
        if not progress >= 0.0:
            raise PanicException("assertion failed: progress >= 0.0")
        if progress == 0.0:
            return 0.0
        waypoints = self.waypoints
        i1 = bisect_right(waypoints, progress)
        if i1 >= len(waypoints):
            return None
        if i1 == 0:
            raise PanicException("assertion failed: i1 > 0")
        p0, p1 = waypoints[i1 - 1], waypoints[i1]
        return (i1 - 1) + _div(progress - p0, p1 - p0)

    # --- nearest point -------------------------------------------------------------------
    def nearest(self, start: float, end: float, point):
        """Progress in [start, end] of the point of the path nearest to ``point``.

        voxelsim samples 101 points of the range and refines the best with ten ternary steps
        (``find_nearest_param_in_range``); this returns the minimiser that search
        approximates: span bounds rule out spans that cannot be nearer than the best found,
        and a clamped Newton iteration finds the minimum inside each remaining span.
        Returns ``(t, position, squared distance)``.
        """
        if not start >= 0.0:
            raise PanicException("assertion failed: start >= 0.0")
        length = self.length
        if length <= EPSILON or not end > start:
            p = self.position(start)
            if p is None:
                return start, None, _INF
            return start, p, _d2(p, point)
        umin, umax = self._umin, self._umax
        scale = (umax - umin) / length
        u_lo = umin + scale * start
        u_hi = umin + scale * end
        if u_hi >= umax:
            u_hi = umax - DOMAIN_END_EPS
        span_u = self._span_u
        k_lo = max(bisect_right(span_u, u_lo) - 1, 0)
        k_hi = max(bisect_right(span_u, u_hi) - 1, 0)
        px, py, pz = point
        spans = self._spans
        search = self._search
        # 1. The span searched last time (or the first in range) gives a first candidate.
        if search is not None and k_lo <= search[0] <= k_hi:
            k0, w0 = search[0], search[1]
        else:
            k0, w0 = k_lo, None
        best = self._span_min(k0, u_lo, u_hi, px, py, pz, w0)
        # 2. Other spans in range that may hold something nearer.
        cache = self._search_cache(search, k_lo, k_hi, px, py, pz, best[3])
        best = self._scan(cache[5], k0, k_lo, k_hi, u_lo, u_hi, point, best)
        # 3. The pruned spans stay pruned while they are farther than the best by the motion.
        moved = math.sqrt((px - cache[0]) ** 2 + (py - cache[1]) ** 2 + (pz - cache[2]) ** 2)
        if cache[4] - moved <= math.sqrt(best[3]):
            cache = self._search_cache(None, k_lo, k_hi, px, py, pz, best[3])
            best = self._scan(cache[5], k0, k_lo, k_hi, u_lo, u_hi, point, best)
        best_k, best_w, best_p, best_d2 = best
        self._search = (best_k, best_w, cache)
        u = spans[best_k][0] + best_w
        t = (u - umin) / scale
        if t < start:
            t = start
        elif t > end:
            t = end
        return t, best_p, best_d2

    def _scan(self, candidates, skip, k_lo, k_hi, u_lo, u_hi, point, best):
        """Search the candidate spans whose tube around the chord may be nearer than ``best``."""
        px, py, pz = point
        bounds = self._bounds
        for k in candidates:
            if k == skip or k < k_lo or k > k_hi:
                continue
            a, b, tube, _, _ = bounds[k]
            lb = _seg_distance(point, a, b) - tube
            if lb > 0.0 and lb * lb > best[3]:
                continue
            found = self._span_min(k, u_lo, u_hi, px, py, pz, None)
            if found[3] < best[3] or (found[3] == best[3] and found[:2] < best[:2]):
                best = found
        return best

    def _search_cache(self, search, k_lo, k_hi, px, py, pz, best_d2):
        """(x, y, z, k_lo, prune distance, candidate spans) for the pruning of ``nearest``."""
        if search is not None and search[2][3] <= k_lo:
            return search[2]
        threshold = math.sqrt(best_d2) + 2.0 * _PRUNE_SLACK
        candidates = []
        pruned = _INF
        bounds = self._bounds
        for k in range(k_lo, k_hi + 1):
            _, _, _, c, r = bounds[k]
            lb = math.sqrt((px - c[0]) ** 2 + (py - c[1]) ** 2 + (pz - c[2]) ** 2) - r
            if lb <= threshold:
                candidates.append(k)
            elif lb < pruned:
                pruned = lb
        return (px, py, pz, k_lo, pruned, candidates)

    def _span_min(self, k, u_lo, u_hi, px, py, pz, w0):
        """Minimum of the squared distance to (px, py, pz) on span ``k`` within [u_lo, u_hi]."""
        u0, h, c = self._spans[k]
        lo = u_lo - u0
        if lo < 0.0:
            lo = 0.0
        hi = u_hi - u0
        if hi > h:
            hi = h
        if hi < lo:
            hi = lo
        c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11 = c
        if w0 is None or not lo <= w0 <= hi:
            # Start from the projection on the chord of the allowed piece.
            ax = c0 + lo * (c1 + lo * (c2 + lo * c3))
            ay = c4 + lo * (c5 + lo * (c6 + lo * c7))
            az = c8 + lo * (c9 + lo * (c10 + lo * c11))
            bx = c0 + hi * (c1 + hi * (c2 + hi * c3))
            by = c4 + hi * (c5 + hi * (c6 + hi * c7))
            bz = c8 + hi * (c9 + hi * (c10 + hi * c11))
            abx, aby, abz = bx - ax, by - ay, bz - az
            ab2 = abx * abx + aby * aby + abz * abz
            f = 0.0 if ab2 <= 0.0 else _clamp01(
                (abx * (px - ax) + aby * (py - ay) + abz * (pz - az)) / ab2)
            w = lo + (hi - lo) * f
        else:
            w = w0
        for _ in range(12):
            x = c0 + w * (c1 + w * (c2 + w * c3)) - px
            y = c4 + w * (c5 + w * (c6 + w * c7)) - py
            z = c8 + w * (c9 + w * (c10 + w * c11)) - pz
            dx = c1 + w * (2.0 * c2 + 3.0 * w * c3)
            dy = c5 + w * (2.0 * c6 + 3.0 * w * c7)
            dz = c9 + w * (2.0 * c10 + 3.0 * w * c11)
            g = x * dx + y * dy + z * dz
            gp = (dx * dx + dy * dy + dz * dz
                  + x * (2.0 * c2 + 6.0 * w * c3) + y * (2.0 * c6 + 6.0 * w * c7)
                  + z * (2.0 * c10 + 6.0 * w * c11))
            if gp > 0.0:
                w_new = w - g / gp
            else:  # not convex here: step downhill by a quarter of the piece
                w_new = w - (hi - lo) * 0.25 if g > 0.0 else w + (hi - lo) * 0.25
            if w_new < lo:
                w_new = lo
            elif w_new > hi:
                w_new = hi
            if abs(w_new - w) <= 1e-13 * (1.0 + abs(u0)):
                w = w_new
                break
            w = w_new
        best_w, best_d2 = w, _NAN
        x = c0 + w * (c1 + w * (c2 + w * c3))
        y = c4 + w * (c5 + w * (c6 + w * c7))
        z = c8 + w * (c9 + w * (c10 + w * c11))
        best_p = (x, y, z)
        best_d2 = (x - px) ** 2 + (y - py) ** 2 + (z - pz) ** 2
        for we in (lo, hi):  # the piece's ends, in case the iteration settled elsewhere
            x = c0 + we * (c1 + we * (c2 + we * c3))
            y = c4 + we * (c5 + we * (c6 + we * c7))
            z = c8 + we * (c9 + we * (c10 + we * c11))
            d2 = (x - px) ** 2 + (y - py) ** 2 + (z - pz) ** 2
            if d2 < best_d2 or (d2 == best_d2 and we < best_w):
                best_w, best_p, best_d2 = we, (x, y, z), d2
        return k, best_w, best_p, best_d2


_new_trajectory = object.__new__


def _d2(a, b) -> float:
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2
