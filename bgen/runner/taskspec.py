"""Task specs: what success means for one goal, checked by bgen from the flight.

A task spec is a JSON document::

    {"goal": "text",                                   (optional)
     "checks": [{"kind": "reach", "point": "target", "radius": 1.0}, ...],
     "objective": {"minimize": "time" | "path_length" | "collisions"}}   (optional)

Points are ``[x, y, z]`` (m; z down, so a negative z is up), a landmark name (``"start"``,
``"target"``, and per scenario more, e.g. ``"turbine_0"``), or ``{"from": landmark,
"offset": [dx, dy, dz]}``. Landmarks resolve per episode (start and target after they were
lifted above the terrain), so one spec serves every seed.

    parse_task_spec(doc)                  -> TaskSpec           TaskSpecError naming the field
    resolve(spec, landmarks)              -> ResolvedSpec       TaskSpecError for a missing landmark
    FlightTracker(resolved, world, delta) .observe(step, pos, collisions_total) -> bool
                                          .results(final_pos) -> [{"kind", "passed", "score", "account"}]
    grade_flight(resolved, positions, collisions_total, world, delta) -> FlightGrade

The episode ends at the first step at which every check holds, else at its step budget; the
tracker decides that step by step inside the episode, ``grade_flight`` decides it from a whole
recorded flight (for a trusted replay) and gives the same verdicts. Nothing here reads what
the policy's ``collect``/``finalize`` return: only positions, collision counts and the world
(``clearance`` reads the ground below the agent, ``standoff`` the nearest cell of any kind).

This module is pure: standard library and numpy only, no simulator, process or file.
"""

from __future__ import annotations

import bisect
import json
import math
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bgen.errors import ConfigError

CHECK_KINDS = ("reach", "visit", "orbit", "dwell", "end_near", "clearance", "standoff",
               "altitude", "collisions", "time_limit")
OBJECTIVES = ("time", "path_length", "collisions")
DEFAULT_SPEC_DOC = {"checks": [{"kind": "reach", "point": "target", "radius": 1.0}]}
MAX_CHECKS = 32
MAX_POINTS = 256
MAX_LAPS = 100
MAX_GOAL_CHARS = 2000
LANDMARK_FORMAT = "a landmark name such as 'start' or 'target'"

#: Check kinds measured against the episode's world (built before any policy call).
WORLD_KINDS = ("clearance", "standoff")

# voxelsim's Cell bits (voxelsim/src/env.rs): what counts as ground for ``clearance``.
FILLED_BIT = 0b0001_0000
GROUND_BIT = 0b0100_0000

# Fields of each kind: name -> (required, default). Order is the order of to_dict().
_FIELDS: dict[str, dict[str, tuple[bool, Any]]] = {
    "reach": {"point": (True, None), "radius": (False, 1.0)},
    "visit": {"points": (True, None), "radius": (False, 1.5), "ordered": (False, True),
              "laps": (False, 1)},
    "orbit": {"centre": (True, None), "min_radius": (True, None), "max_radius": (True, None),
              "degrees": (False, 360.0)},
    "dwell": {"point": (True, None), "seconds": (True, None), "radius": (False, 1.5)},
    "end_near": {"point": (True, None), "radius": (False, 1.5)},
    "clearance": {"min_m": (True, None)},
    "standoff": {"min_m": (True, None)},
    "altitude": {"min_z": (False, None), "max_z": (False, None)},
    "collisions": {"max": (False, 0)},
    "time_limit": {"seconds": (True, None)},
}


class TaskSpecError(ConfigError):
    """A task spec is invalid; ``field`` names the offending part, e.g. ``checks[2].radius``."""


# --------------------------------------------------------------------------------------------
# The parsed spec
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PointRef:
    """A point as the spec states it: a landmark plus an offset, or (``landmark`` None) a
    literal ``[x, y, z]`` held in ``offset``."""

    landmark: str | None
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def to_json(self):
        if self.landmark is None:
            return [_num(v) for v in self.offset]
        if self.offset == (0.0, 0.0, 0.0):
            return self.landmark
        return {"from": self.landmark, "offset": [_num(v) for v in self.offset]}


@dataclass(frozen=True)
class Check:
    """One check: its kind, its index in the spec and its fields with defaults filled in."""

    kind: str
    index: int
    fields: dict

    def to_dict(self) -> dict:
        out: dict = {"kind": self.kind}
        for name in _FIELDS[self.kind]:
            value = self.fields.get(name)
            if value is None:
                continue
            if isinstance(value, PointRef):
                value = value.to_json()
            elif isinstance(value, tuple) and value and isinstance(value[0], PointRef):
                value = [p.to_json() for p in value]
            out[name] = _num(value)
        return out


@dataclass(frozen=True)
class TaskSpec:
    """A validated task spec (see the module docstring)."""

    checks: tuple[Check, ...]
    goal: str | None = None
    objective: str | None = None          # "time" | "path_length" | "collisions" | None

    def to_dict(self) -> dict:
        out: dict = {}
        if self.goal is not None:
            out["goal"] = self.goal
        out["checks"] = [c.to_dict() for c in self.checks]
        if self.objective is not None:
            out["objective"] = {"minimize": self.objective}
        return out

    def landmark_names(self) -> set[str]:
        """Every landmark the spec refers to."""
        names = set()
        for check in self.checks:
            for value in check.fields.values():
                refs = value if isinstance(value, tuple) else (value,)
                names.update(r.landmark for r in refs if isinstance(r, PointRef) and r.landmark)
        return names


def _num(value):
    """Whole floats as ints in JSON, so [50.0, 50.0, -20.0] reads [50, 50, -20]."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def default_spec() -> TaskSpec:
    """Today's behaviour: reach the target within 1.0 m."""
    return parse_task_spec(DEFAULT_SPEC_DOC)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

def _where(prefix: str, name: str) -> str:
    if not prefix:
        return name
    return f"{prefix}{name}" if name.startswith("[") else f"{prefix}.{name}"


def _fail(field_name: str, expected: str, actual) -> TaskSpecError:
    shown = json.dumps(actual) if _jsonable(actual) else repr(actual)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return TaskSpecError(f"{field_name}: expects {expected}, actual: {shown}", field=field_name)


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def json_int(digits: str) -> int:
    """``json.loads``' ``parse_int``: the integer of a JSON literal, or ValueError giving its
    length when it has more digits than Python converts (``sys.get_int_max_str_digits()``,
    4300 by default) instead of Python's advice to raise that limit."""
    limit = sys.get_int_max_str_digits()
    count = len(digits) - digits.startswith("-")
    if limit and count > limit:
        raise ValueError(f"a number with {count} digits (at most {limit} are read)")
    return int(digits)


def is_finite_number(value) -> bool:
    """An int or float (not a bool) that is finite. An int too large for a float is not one:
    ``math.isfinite`` raises OverflowError on it (a 400-digit JSON number, say)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False



#: Largest magnitude of any number in a spec (m, s, deg): far beyond any world, small enough
#: that routes, budgets and angles stay finite.
MAX_MAGNITUDE = 100_000


def _number(value, where: str, *, positive=False, non_negative=False) -> float:
    if not is_finite_number(value) or abs(value) > MAX_MAGNITUDE:
        raise _fail(where, f"a number within ±{MAX_MAGNITUDE:,}", value)
    if positive and not value > 0:
        raise _fail(where, "a positive number", value)
    if non_negative and value < 0:
        raise _fail(where, "a number >= 0", value)
    return float(value)


def _integer(value, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(where, f"an integer in {low}..{high}", value)
    return value


def _triple(value, where: str) -> tuple[float, float, float]:
    if not isinstance(value, list) or len(value) != 3 or not all(
            is_finite_number(v) and abs(v) <= MAX_MAGNITUDE for v in value):
        raise _fail(where, f"[x, y, z] (three numbers within ±{MAX_MAGNITUDE:,})", value)
    return tuple(float(v) for v in value)


def _landmark_name(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise _fail(where, LANDMARK_FORMAT, value)
    return value.strip()


def parse_point(value, where: str) -> PointRef:
    """A PointRef from ``[x, y, z]``, a landmark name or ``{"from", "offset"}``."""
    if isinstance(value, str):
        return PointRef(_landmark_name(value, where))
    if isinstance(value, list):
        return PointRef(None, _triple(value, where))
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"from", "offset"})
        if unknown:
            raise _fail(f"{where}.{unknown[0]}", "no such field (a point has 'from' and 'offset')",
                        value[unknown[0]])
        if "from" not in value:
            raise TaskSpecError(f"{where}.from: expects {LANDMARK_FORMAT}, actual: nothing",
                                field=f"{where}.from")
        offset = _triple(value.get("offset", [0, 0, 0]), f"{where}.offset")
        return PointRef(_landmark_name(value["from"], f"{where}.from"), offset)
    raise _fail(where, f"a point: [x, y, z], {LANDMARK_FORMAT}, or "
                       "{\"from\": landmark, \"offset\": [dx, dy, dz]}", value)


def _parse_check(doc, index: int, prefix: str) -> Check:
    where = _where(prefix, f"checks[{index}]")
    if not isinstance(doc, dict):
        raise _fail(where, "an object with a 'kind'", doc)
    kind = doc.get("kind")
    if kind not in CHECK_KINDS:
        raise _fail(f"{where}.kind", f"one of {', '.join(CHECK_KINDS)}", kind)
    spec_fields = _FIELDS[kind]
    unknown = sorted(set(doc) - set(spec_fields) - {"kind"})
    if unknown:
        raise _fail(f"{where}.{unknown[0]}",
                    f"no such field; a {kind} check has {', '.join(spec_fields)}",
                    doc[unknown[0]])
    values: dict = {}
    for name, (required, default) in spec_fields.items():
        at = f"{where}.{name}"
        if name not in doc or doc[name] is None:
            if required:
                raise TaskSpecError(f"{at}: required for a {kind} check", field=at)
            values[name] = default
            continue
        raw = doc[name]
        if name in ("point", "centre"):
            values[name] = parse_point(raw, at)
        elif name == "points":
            if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_POINTS:
                raise _fail(at, f"a list of 1..{MAX_POINTS} points", raw)
            values[name] = tuple(parse_point(p, f"{at}[{i}]") for i, p in enumerate(raw))
        elif name in ("radius", "min_m", "seconds", "degrees", "max_radius"):
            values[name] = _number(raw, at, positive=True)
        elif name == "min_radius":
            values[name] = _number(raw, at, non_negative=True)
        elif name in ("min_z", "max_z"):
            values[name] = _number(raw, at)
        elif name == "ordered":
            if not isinstance(raw, bool):
                raise _fail(at, "true or false", raw)
            values[name] = raw
        elif name == "laps":
            values[name] = _integer(raw, at, 1, MAX_LAPS)
        elif name == "max":
            values[name] = _integer(raw, at, 0, 10**9)
    if kind == "standoff" and values["min_m"] > MAX_STANDOFF_M:
        raise _fail(f"{where}.min_m", f"a positive number up to {MAX_STANDOFF_M:g}", doc["min_m"])
    if kind == "orbit" and values["max_radius"] <= values["min_radius"]:
        raise _fail(f"{where}.max_radius", f"a number above min_radius ({values['min_radius']:g})",
                    doc["max_radius"])
    if kind == "altitude":
        if values["min_z"] is None and values["max_z"] is None:
            raise TaskSpecError(f"{where}.min_z: an altitude check needs min_z, max_z or both "
                                "(z down: min_z is the highest allowed)", field=f"{where}.min_z")
        if values["min_z"] is not None and values["max_z"] is not None and \
                values["max_z"] < values["min_z"]:
            raise _fail(f"{where}.max_z", f"a number >= min_z ({values['min_z']:g})", doc["max_z"])
    return Check(kind, index, values)


def parse_task_spec(doc: dict | str | None, *, prefix: str = "") -> TaskSpec:
    """A validated ``TaskSpec`` from a dict, a JSON text, or None (the default spec).

    ``prefix`` is put before every field name in errors (the server uses ``"task_spec"``).
    Raises ``TaskSpecError`` for the first invalid field, e.g. ``checks[2].radius: expects a
    positive number, actual: -1``.
    """
    if doc is None:
        doc = DEFAULT_SPEC_DOC
    root = prefix or "task_spec"
    if isinstance(doc, str):
        try:
            doc = json.loads(doc, parse_int=json_int)
        except ValueError as error:
            raise TaskSpecError(f"{root}: expects a JSON object, actual: invalid JSON ({error})",
                                field=root) from None
    if not isinstance(doc, dict):
        raise _fail(root, "an object with 'checks'", doc)
    unknown = sorted(set(doc) - {"goal", "checks", "objective"})
    if unknown:
        raise _fail(_where(prefix, unknown[0]), "no such field; a task spec has goal, checks, "
                                                "objective", doc[unknown[0]])
    goal = doc.get("goal")
    if goal is not None and (not isinstance(goal, str) or len(goal) > MAX_GOAL_CHARS):
        raise _fail(_where(prefix, "goal"), f"a string of at most {MAX_GOAL_CHARS} characters", goal)
    checks = doc.get("checks")
    if not isinstance(checks, list) or not 1 <= len(checks) <= MAX_CHECKS:
        raise _fail(_where(prefix, "checks"), f"a list of 1..{MAX_CHECKS} checks", checks)
    parsed = tuple(_parse_check(c, i, prefix) for i, c in enumerate(checks))
    kinds = [c.kind for c in parsed]
    if kinds.count("time_limit") > 1:
        at = _where(prefix, f"checks[{len(kinds) - 1 - kinds[::-1].index('time_limit')}]")
        raise TaskSpecError(f"{at}: at most one time_limit check", field=at)
    if kinds == ["time_limit"]:
        raise TaskSpecError(f"{_where(prefix, 'checks')}: a time_limit needs other checks to "
                            "time", field=_where(prefix, "checks"))
    objective = doc.get("objective")
    if objective is not None:
        at = _where(prefix, "objective")
        if not isinstance(objective, dict) or set(objective) != {"minimize"}:
            raise _fail(at, '{"minimize": "time" | "path_length" | "collisions"}', objective)
        if objective["minimize"] not in OBJECTIVES:
            raise _fail(f"{at}.minimize", f"one of {', '.join(OBJECTIVES)}", objective["minimize"])
        objective = objective["minimize"]
    return TaskSpec(parsed, goal.strip() if isinstance(goal, str) else None, objective)


def check_landmarks(spec: TaskSpec, names, *, prefix: str = "") -> None:
    """``TaskSpecError`` naming the first point whose landmark is not in ``names``."""
    names = set(names)
    for check in spec.checks:
        for name, value in check.fields.items():
            refs = value if isinstance(value, tuple) else (value,)
            for i, ref in enumerate(refs):
                if isinstance(ref, PointRef) and ref.landmark and ref.landmark not in names:
                    at = _where(prefix, f"checks[{check.index}].{name}")
                    if isinstance(value, tuple):
                        at += f"[{i}]"
                    raise TaskSpecError(f"{at}: unknown landmark {ref.landmark!r}; this scenario "
                                        f"has {', '.join(sorted(names))}", field=at)


# --------------------------------------------------------------------------------------------
# Resolution: landmarks of one episode -> concrete points
# --------------------------------------------------------------------------------------------

def episode_landmarks(start, target, scenario_landmarks: dict | None = None) -> dict:
    """The landmarks of one episode: the scenario's, plus ``start`` and ``target`` as flown
    (after lifting above the terrain)."""
    marks = {name: tuple(float(v) for v in point)
             for name, point in (scenario_landmarks or {}).items()}
    marks["start"] = tuple(float(v) for v in start)
    marks["target"] = tuple(float(v) for v in target)
    return marks


@dataclass(frozen=True)
class ResolvedCheck:
    """A check with every point made concrete (numpy float arrays of shape (3,) or (K, 3))."""

    kind: str
    index: int
    fields: dict
    points: dict          # field name -> np.ndarray


@dataclass(frozen=True)
class ResolvedSpec:
    spec: TaskSpec
    checks: tuple[ResolvedCheck, ...]

    @property
    def needs_world(self) -> bool:
        return any(c.kind in WORLD_KINDS for c in self.checks)


def _resolve_point(ref: PointRef, landmarks: dict, where: str) -> np.ndarray:
    if ref.landmark is None:
        return np.array(ref.offset, dtype=float)
    if ref.landmark not in landmarks:
        raise TaskSpecError(f"{where}: unknown landmark {ref.landmark!r}; this scenario has "
                            f"{', '.join(sorted(landmarks))}", field=where)
    return np.asarray(landmarks[ref.landmark], dtype=float) + np.asarray(ref.offset, dtype=float)


def resolve(spec: TaskSpec, landmarks: dict) -> ResolvedSpec:
    """Concrete points for one episode; ``landmarks`` maps names to (x, y, z) in m."""
    checks = []
    for check in spec.checks:
        points = {}
        for name, value in check.fields.items():
            where = f"checks[{check.index}].{name}"
            if isinstance(value, PointRef):
                points[name] = _resolve_point(value, landmarks, where)
            elif isinstance(value, tuple) and value and isinstance(value[0], PointRef):
                points[name] = np.stack([_resolve_point(p, landmarks, f"{where}[{i}]")
                                         for i, p in enumerate(value)])
        checks.append(ResolvedCheck(check.kind, check.index, check.fields, points))
    return ResolvedSpec(spec, tuple(checks))


# --------------------------------------------------------------------------------------------
# The world as the checks see it: ground below the drone (clearance), nearest cell (standoff)
# --------------------------------------------------------------------------------------------

def world_cells(world) -> tuple[np.ndarray, np.ndarray]:
    """(coords (N, 3) int64, bits (N,) int64) of every stored cell of ``world``: the embedded
    backend's arrays when it has them, else ``VoxelGrid.to_dict_py_tolistpy()``."""
    arrays = getattr(world, "_arrays", None)
    if callable(arrays):
        coords, bits = arrays()
    else:
        cells = world.to_dict_py_tolistpy()
        coords = [c for c, _ in cells]
        bits = [cell.bits_py() for _, cell in cells]
    return (np.asarray(coords, dtype=np.int64).reshape(-1, 3),
            np.asarray(bits, dtype=np.int64).reshape(-1))


class HeightMap:
    """The FILLED or GROUND cells of a world by column, to measure height above the ground.

    Built once per world from its cells (``VoxelGrid.to_dict_py_tolistpy()``; the embedded
    backend's arrays when present). The cell ``(x, y, z)`` is the unit cube centred on it, so
    its top face is at ``z - 0.5`` (z down). ``clearance(pos)`` is the distance from ``pos``
    down to the top face of the highest such cell of its column that is not wholly above it:
    negative inside a cell, ``inf`` over an empty column; under every cell of its column (flown
    through the ground) it is minus the depth below the lowest cell's bottom face.
    """

    def __init__(self, coords: np.ndarray, bits: np.ndarray):
        coords = np.asarray(coords, dtype=np.int64).reshape(-1, 3)
        bits = np.asarray(bits, dtype=np.int64).reshape(-1)
        solid = coords[(bits & (FILLED_BIT | GROUND_BIT)) != 0]
        # One flat list of z (ascending within each column) and, per (x, y) of the bounding
        # box, where its column starts and ends in that list (start == end: empty column).
        if len(solid):
            self.x0, self.y0 = int(solid[:, 0].min()), int(solid[:, 1].min())
            nx = int(solid[:, 0].max()) - self.x0 + 1
            ny = int(solid[:, 1].max()) - self.y0 + 1
            flat = (solid[:, 0] - self.x0) * ny + (solid[:, 1] - self.y0)
            z0 = int(solid[:, 2].min())
            order = np.argsort(flat * (int(solid[:, 2].max()) - z0 + 1) + (solid[:, 2] - z0),
                               kind="stable")
            self.zs: list[int] = solid[order, 2].tolist()
            counts = np.bincount(flat, minlength=nx * ny)
            ends = np.cumsum(counts)
            self.ny = ny
            self.nx = nx
            self.starts: list[int] = (ends - counts).tolist()
            self.ends: list[int] = ends.tolist()
        else:
            self.x0 = self.y0 = self.nx = self.ny = 0
            self.zs, self.starts, self.ends = [], [], []

    def column(self, x: int, y: int) -> list[int]:
        """z of the FILLED or GROUND cells of column (x, y), ascending (highest first)."""
        i, j = x - self.x0, y - self.y0
        if not (0 <= i < self.nx and 0 <= j < self.ny):
            return []
        k = i * self.ny + j
        return self.zs[self.starts[k]:self.ends[k]]

    @classmethod
    def from_world(cls, world) -> "HeightMap":
        if isinstance(world, HeightMap):
            return world
        return cls(*world_cells(world))

    def ground_below(self, pos) -> tuple[float, tuple[int, int, int] | None]:
        """(clearance in m, the ground cell) for a position; (inf, None) over nothing."""
        x, y = int(math.floor(pos[0] + 0.5)), int(math.floor(pos[1] + 0.5))
        i, j = x - self.x0, y - self.y0
        if not (0 <= i < self.nx and 0 <= j < self.ny):
            return math.inf, None
        k = i * self.ny + j
        lo, hi = self.starts[k], self.ends[k]
        if lo == hi:
            return math.inf, None
        n = bisect.bisect_right(self.zs, pos[2] - 0.5, lo, hi)
        if n >= hi:         # under the lowest cell of its column: underground, negative
            zc = self.zs[hi - 1]
            return (zc + 0.5) - float(pos[2]), (x, y, zc)
        zc = self.zs[n]
        return (zc - 0.5) - float(pos[2]), (x, y, zc)


class CellDistance:
    """Distance (m) from a point to the nearest cell of a world, for ``standoff``.

    Every stored cell counts, whatever its bits (ground, trunks, foliage, turbines): the same
    cells ``world.collisions_py`` reports as contacts (voxelsim ``VoxelGrid::collisions``).
    The cell ``(x, y, z)`` is the unit cube centred on it, so the distance from ``p`` to it is
    the length of ``max(|p - c| - 0.5, 0)`` per axis, 0 inside. Built once per world as a dense
    occupancy box over the cells' bounding box (any non-zero value is a cell): the embedded
    backend's own dense box when it has one (no copy), else one byte per cell.
    """

    def __init__(self, coords: np.ndarray):
        coords = np.asarray(coords, dtype=np.int64).reshape(-1, 3)
        if len(coords):
            self.low = coords.min(axis=0)
            shape = coords.max(axis=0) - self.low + 1
            self.occupied = np.zeros(tuple(int(n) for n in shape), dtype=bool)
            self.occupied[tuple((coords - self.low).T)] = True
        else:
            self.low = np.zeros(3, dtype=np.int64)
            self.occupied = np.zeros((0, 0, 0), dtype=bool)

    @classmethod
    def from_world(cls, world) -> "CellDistance":
        if isinstance(world, CellDistance):
            return world
        dense = getattr(world, "_dense", None)
        box = dense() if callable(dense) else None
        if box is not None:
            this = cls.__new__(cls)
            this.low = np.asarray(box.low, dtype=np.int64)
            this.occupied = box.values.reshape(tuple(box.shape))     # read-only view
            return this
        return cls(world_cells(world)[0])

    def nearest(self, pos, reach: float) -> tuple[float, tuple[int, int, int] | None]:
        """(distance in m, the cell) of the nearest cell within ``reach`` m of ``pos``;
        (inf, None) when no cell is that close."""
        p = (float(pos[0]), float(pos[1]), float(pos[2]))
        if not all(map(math.isfinite, p)) or not math.isfinite(reach):
            return math.inf, None
        # Cells whose cube can lie within reach: centres within reach + 0.5 on every axis.
        first, last = [], []
        for axis in range(3):
            low, size = int(self.low[axis]), self.occupied.shape[axis]
            first.append(max(math.ceil(p[axis] - reach - 0.5) - low, 0))
            last.append(min(math.floor(p[axis] + reach + 0.5) - low, size - 1))
            if last[axis] < first[axis]:
                return math.inf, None
        box = self.occupied[first[0]:last[0] + 1, first[1]:last[1] + 1, first[2]:last[2] + 1]
        found = np.argwhere(box)
        if not len(found):
            return math.inf, None
        cells = found + (np.asarray(first) + self.low)
        gaps = np.maximum(np.abs(cells - np.asarray(p)) - 0.5, 0.0)
        distances = np.sqrt((gaps * gaps).sum(axis=1))
        k = int(np.argmin(distances))
        if distances[k] > reach:
            return math.inf, None
        return float(distances[k]), tuple(int(v) for v in cells[k])


# --------------------------------------------------------------------------------------------
# Checking a flight step by step
# --------------------------------------------------------------------------------------------

def _fmt_point(p) -> str:
    return "[" + ", ".join(f"{float(v):.3g}" if abs(float(v)) < 1000 else f"{float(v):.0f}"
                           for v in p) + "]"


def _named(check: ResolvedCheck, name: str) -> str:
    """How an account names a point: "target [60, 60, -20]" or "[56, 50, -24]"."""
    ref = check.fields.get(name)
    shown = _fmt_point(check.points[name])
    if isinstance(ref, PointRef) and ref.landmark:
        label = ref.landmark if ref.offset == (0.0, 0.0, 0.0) else f"{ref.landmark}+offset"
        return f"{label} {shown}"
    return shown


def _metres(d: float, limit: float) -> str:
    """``d`` with one decimal, or as many more (up to six) as it takes not to read as
    ``limit`` itself: an account must not say "ended 1.5 m" for a pass of radius 1.5, nor
    "closest 1.0 m" for a miss of 1."""
    for digits in range(1, 7):
        text = f"{d:.{digits}f}"
        if float(text) != limit or d == limit:
            return text
    return text


def score_text(score: float, passed: bool) -> str:
    """A score (or a mean of scores) with two decimals, or three when two would read 1.00 for
    a check that did not pass everywhere (a score of 0.997: "FAIL 0.997")."""
    text = f"{float(score):.2f}"
    if text == "1.00" and not passed:
        text = f"{min(float(score), 0.999):.3f}"
    return text


def _tuple(point) -> tuple[float, float, float]:
    return (float(point[0]), float(point[1]), float(point[2]))


class _Reach:
    def __init__(self, check, ctx):
        self.c, self.p, self.r = check, _tuple(check.points["point"]), check.fields["radius"]
        self.best, self.at = math.inf, None

    def observe(self, step, pos, ctx):
        d = math.dist(pos, self.p)
        if d < self.best:
            self.best = d
        if self.at is None and d < self.r:
            self.at = step

    def holds(self, pos, ctx):
        return self.at is not None

    def result(self, pos, ctx):
        where = _named(self.c, "point")
        if self.at is not None:
            return True, 1.0, f"reach: within {self.r:g} m of {where} at step {self.at}"
        return False, min(1.0, self.r / self.best) if self.best > 0 else 0.0, (
            f"reach: closest {_metres(self.best, self.r)} m to {where} (needs < {self.r:g} m)")


class _Visit:
    def __init__(self, check, ctx):
        self.c = check
        self.points = [_tuple(p) for p in check.points["points"]]
        self.r, self.ordered, self.laps = check.fields["radius"], check.fields["ordered"], \
            check.fields["laps"]
        self.total = len(self.points) * self.laps
        self.done = 0                       # points visited, over all laps
        self.next_best = math.inf           # ordered: closest approach to the next point
        self.lap_seen: set[int] = set()     # unordered: points of the current lap visited
        self.best = [math.inf] * len(self.points)
        # A point counts again (next lap) only after the agent has been outside its radius.
        self.armed = [True] * len(self.points)

    def observe(self, step, pos, ctx):
        dists = [math.dist(pos, p) for p in self.points]
        self.best = [min(b, d) for b, d in zip(self.best, dists)]
        armed = self.armed
        for i, d in enumerate(dists):
            if d >= self.r:
                armed[i] = True
        if self.done >= self.total:
            return
        if self.ordered:
            while self.done < self.total:
                i = self.done % len(self.points)
                if dists[i] < self.r and armed[i]:
                    armed[i] = False
                    self.done += 1
                    self.next_best = math.inf
                else:
                    self.next_best = min(self.next_best, dists[i])
                    break
        else:
            for i, d in enumerate(dists):
                if d < self.r and armed[i] and i not in self.lap_seen:
                    armed[i] = False
                    self.lap_seen.add(i)
            done_in_lap = len(self.lap_seen)
            if done_in_lap == len(self.points):
                self.done = min(self.total, self.done - self.done % len(self.points)
                                + len(self.points))
                self.lap_seen = set()
            else:
                self.done = self.done - self.done % len(self.points) + done_in_lap

    def holds(self, pos, ctx):
        return self.done >= self.total

    def result(self, pos, ctx):
        n = len(self.points)
        laps = f" ({self.laps} laps of {n})" if self.laps > 1 else ""
        head = f"visit: {self.done}/{self.total} points{laps}"
        if self.done >= self.total:
            return True, 1.0, head + ("" if not self.ordered else " in order")
        if self.ordered:
            i = self.done % n
            best = self.next_best
        else:
            missing = [i for i in range(n) if i not in self.lap_seen]
            i = min(missing, key=lambda k: self.best[k])
            best = float(self.best[i])
        by = f"by {best:.1f} m" if math.isfinite(best) else "never approached"
        ref = self.c.fields["points"][i]
        label = f"{ref.landmark} " if ref.landmark and ref.offset == (0.0, 0.0, 0.0) else ""
        return False, self.done / self.total, (
            f"{head}; missed {label}{_fmt_point(self.points[i])} (point {i}) {by}")


class _Orbit:
    def __init__(self, check, ctx):
        self.c = check
        self.centre = _tuple(check.points["centre"])
        f = check.fields
        self.lo, self.hi, self.degrees = f["min_radius"], f["max_radius"], f["degrees"]
        self.net = 0.0          # degrees, signed
        self.best = 0.0         # largest |net| so far
        self.prev_angle = None  # angle at the previous step when it was in the band
        self.at = None

    def observe(self, step, pos, ctx):
        dx, dy = pos[0] - self.centre[0], pos[1] - self.centre[1]
        r = math.hypot(dx, dy)
        if not self.lo <= r <= self.hi:
            self.prev_angle = None
            return
        angle = math.degrees(math.atan2(dy, dx))
        if self.prev_angle is not None:
            turn = (angle - self.prev_angle + 180.0) % 360.0 - 180.0
            self.net += turn
            self.best = max(self.best, abs(self.net))
            if self.at is None and self.best >= self.degrees - 1e-9:
                self.at = step
        self.prev_angle = angle

    def holds(self, pos, ctx):
        return self.at is not None

    def result(self, pos, ctx):
        band = f"{self.lo:g}-{self.hi:g} m"
        where = _named(self.c, "centre")
        if self.at is not None:
            return True, 1.0, (f"orbit: swept {self.degrees:g} deg around {where} within {band} "
                               f"by step {self.at}")
        return False, min(1.0, self.best / self.degrees), (
            f"orbit: swept {self.best:.0f} deg of {self.degrees:g} around {where} within {band}")


class _Dwell:
    """Passes for good once the agent has stayed within radius of point for seconds on end
    (consecutive steps, ``delta`` s each)."""

    def __init__(self, check, ctx):
        self.c, self.p = check, _tuple(check.points["point"])
        self.r, self.seconds = check.fields["radius"], check.fields["seconds"]
        self.stay = 0                 # steps of the current stay inside the radius
        self.stay_from = None
        self.longest, self.longest_from = 0, None
        self.closest = math.inf
        self.done_at = None

    def observe(self, step, pos, ctx):
        if self.done_at is not None:
            return
        d = math.dist(pos, self.p)
        self.closest = min(self.closest, d)
        if d >= self.r:
            self.stay = 0
            return
        if self.stay == 0:
            self.stay_from = step
        self.stay += 1
        if self.stay > self.longest:
            self.longest, self.longest_from = self.stay, self.stay_from
        if self.stay * ctx.delta >= self.seconds - 1e-9:
            self.done_at = step

    def holds(self, pos, ctx):
        return self.done_at is not None

    def result(self, pos, ctx):
        where = _named(self.c, "point")
        if self.done_at is not None:
            return True, 1.0, (f"dwell: within {self.r:g} m of {where} for {self.seconds:g} s, "
                               f"steps {self.longest_from}-{self.done_at}")
        if not self.longest:
            return False, 0.0, (f"dwell: never within {self.r:g} m of {where} "
                                f"(closest {_metres(self.closest, self.r)} m)")
        stayed = self.longest * ctx.delta
        return False, min(1.0, stayed / self.seconds), (
            f"dwell: longest stay {stayed:.2f} s of {self.seconds:g} s within {self.r:g} m of "
            f"{where} (from step {self.longest_from})")


class _EndNear:
    def __init__(self, check, ctx):
        self.c, self.p, self.r = check, _tuple(check.points["point"]), check.fields["radius"]

    def observe(self, step, pos, ctx):
        pass

    def distance(self, pos):
        return math.dist(pos, self.p)

    def holds(self, pos, ctx):
        return self.distance(pos) < self.r

    def result(self, pos, ctx):
        d = self.distance(pos)
        where = _named(self.c, "point")
        if d < self.r:
            return True, 1.0, f"end_near: ended {_metres(d, self.r)} m from {where}"
        return False, min(1.0, self.r / d), (f"end_near: ended {_metres(d, self.r)} m from {where} "
                                             f"(needs < {self.r:g} m)")


class _AtLeast:
    """A margin that must stay at least ``min_m`` from the first step it is reached (the
    take-off exempt) to the end: ``clearance`` and ``standoff``. ``_count`` keeps the steps
    clear and the smallest margin since, with what the subclass tells of it."""

    def __init__(self, check, ctx):
        self.min_m = check.fields["min_m"]
        self.armed_at = None
        self.clear = 0
        self.counted = 0
        self.low = math.inf
        self.low_at = None      # (step, detail) of the smallest margin since armed
        self.violated = False

    def _count(self, step, margin, detail) -> None:
        ok = margin >= self.min_m
        if self.armed_at is None:
            if not ok:
                return
            self.armed_at = step
        self.counted += 1
        self.clear += ok
        if not ok:
            self.violated = True
        if margin < self.low or self.low_at is None:
            self.low, self.low_at = margin, (step, detail)

    def holds(self, pos, ctx):
        return self.armed_at is not None and not self.violated


class _Clearance(_AtLeast):
    def observe(self, step, pos, ctx):
        height, cell = ctx.heights.ground_below(pos)
        self._count(step, height, cell)

    def result(self, pos, ctx):
        if self.armed_at is None:
            return False, 0.0, f"clearance: never {self.min_m:g} m above the ground"
        step, cell = self.low_at
        low = f"{_metres(self.low, self.min_m)} m at step {step} over {_fmt_point(cell)}" if cell else \
            f"no ground below at step {step}"
        score = self.clear / self.counted if self.counted else 0.0
        if not self.violated:
            return True, 1.0, (f"clearance: at least {self.min_m:g} m from step {self.armed_at} "
                               f"on (lowest {low})")
        return False, score, (f"clearance: {low} (needs {self.min_m:g} m; clear "
                              f"{self.clear}/{self.counted} steps from step {self.armed_at})")


#: A ``standoff`` account names the closest cell up to this far beyond ``min_m`` (m).
STANDOFF_REPORT_M = 2.0
#: Largest ``standoff`` ``min_m`` (m): each query searches a box of about twice its reach
#: across, so the grade's cost grows with its cube.
MAX_STANDOFF_M = 20.0
#: How much farther than that each query looks (m): a flight that far from every cell then
#: needs no query until it has moved this far.
STANDOFF_LOOK_M = 4.0


class _Standoff(_AtLeast):
    """Like ``_Clearance`` (armed at the first step far enough, then required at every step),
    with the 3-D distance to the nearest cell of any kind instead of the height above ground.

    Inside or under the ground (a negative clearance: the ground of a world is a shell a few
    cells thick, with nothing below it) the distance is 0, checked at every step: a drone that
    dived through the shell would otherwise be far from every cell.

    Otherwise the distance changes by at most the distance moved, so after a query the next
    steps need none while that bound already decides them (far from every cell: most of a
    flight); the verdicts and accounts are those of a query at every step."""

    def __init__(self, check, ctx):
        super().__init__(check, ctx)
        self.reach = self.min_m + STANDOFF_REPORT_M
        self.look = self.reach + STANDOFF_LOOK_M
        self.queried_at = None  # (position, distance) of the last query (inf: beyond look)

    def _decided(self, pos) -> bool:
        """Count this step without a query when the last one's bound settles it."""
        if self.queried_at is None:
            return False
        where, distance = self.queried_at
        moved = math.dist(pos, where)
        if self.armed_at is None:       # not armed: only a step surely too close is settled
            return distance + moved < self.min_m
        lowest = min(distance, self.look) - moved
        if lowest >= self.min_m and (lowest >= self.low or lowest > self.reach):
            self.counted += 1           # clear, and no closer than the closest seen
            self.clear += 1
            return True
        return False

    def observe(self, step, pos, ctx):
        height, ground = ctx.heights.ground_below(pos)
        under = height < 0
        if under:
            distance, cell = 0.0, ground
            self.queried_at = None
        else:
            if self._decided(pos):
                return
            distance, cell = ctx.cells.nearest(pos, self.look)
            self.queried_at = (pos, distance)
            if distance > self.reach:   # reported as a query within reach would see it
                distance, cell = math.inf, None
        self._count(step, distance, (cell, under))

    def result(self, pos, ctx):
        if self.armed_at is None:
            return False, 0.0, f"standoff: never {self.min_m:g} m from every cell"
        step, (cell, under) = self.low_at
        if under:
            low = f"in or under the ground at step {step} (ground cell {_fmt_point(cell)})"
        elif cell:
            low = f"{_metres(self.low, self.min_m)} m at step {step} from the cell {_fmt_point(cell)}"
        else:
            low = None
        score = self.clear / self.counted if self.counted else 0.0
        if not self.violated:
            closest = f"closest {low}" if low else f"no cell within {self.reach:g} m"
            return True, 1.0, (f"standoff: at least {self.min_m:g} m from every cell from step "
                               f"{self.armed_at} on ({closest})")
        # Violated: some cell came closer than min_m, so ``low`` names one.
        return False, score, (f"standoff: {low} (needs {self.min_m:g} m; clear "
                              f"{self.clear}/{self.counted} steps from step {self.armed_at})")


class _Altitude:
    def __init__(self, check, ctx):
        self.lo, self.hi = check.fields["min_z"], check.fields["max_z"]
        self.steps = self.inside = 0
        self.first_out = None

    def observe(self, step, pos, ctx):
        z = pos[2]
        ok = (self.lo is None or z >= self.lo) and (self.hi is None or z <= self.hi)
        self.steps += 1
        self.inside += ok
        if not ok and self.first_out is None:
            self.first_out = (step, z)

    def holds(self, pos, ctx):
        return self.first_out is None

    def band(self) -> str:
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        return f"[{lo}, {hi}]"

    def result(self, pos, ctx):
        if self.first_out is None:
            return True, 1.0, f"altitude: z stayed in {self.band()} for {self.steps} steps"
        step, z = self.first_out
        return False, self.inside / self.steps if self.steps else 0.0, (
            f"altitude: z {z:.1f} at step {step} outside {self.band()} "
            f"({self.inside}/{self.steps} steps in band)")


class _Collisions:
    def __init__(self, check, ctx):
        self.max = check.fields["max"]
        self.total = 0
        self.first_over = None

    def observe(self, step, pos, ctx):
        self.total = ctx.collisions
        if self.total > self.max and self.first_over is None:
            self.first_over = step

    def holds(self, pos, ctx):
        return self.total <= self.max

    def result(self, pos, ctx):
        if self.total <= self.max:
            return True, 1.0, f"collisions: {self.total} contacts (at most {self.max})"
        return False, (self.max + 1) / (self.total + 1), (
            f"collisions: {self.total} contacts, at most {self.max} allowed "
            f"(over from step {self.first_over})")


class _TimeLimit:
    """Judged by the tracker: whether every other check held by ``seconds``."""

    def __init__(self, check, ctx):
        self.seconds = check.fields["seconds"]

    def observe(self, step, pos, ctx):
        pass

    def holds(self, pos, ctx):
        return ctx.others_hold and ctx.elapsed <= self.seconds + 1e-9

    def result(self, pos, ctx):
        if ctx.others_first is None:
            return False, 0.0, (f"time_limit: the other checks never all held "
                                f"(limit {self.seconds:g} s)")
        elapsed = ctx.others_first
        if elapsed <= self.seconds + 1e-9 and ctx.others_hold:
            return True, 1.0, f"time_limit: the other checks held at {elapsed:.2f} s " \
                              f"(limit {self.seconds:g} s)"
        return False, min(1.0, self.seconds / elapsed), (
            f"time_limit: the other checks first held at {elapsed:.2f} s, limit {self.seconds:g} s")


_CHECKERS = {"reach": _Reach, "visit": _Visit, "orbit": _Orbit, "dwell": _Dwell,
             "end_near": _EndNear,
             "clearance": _Clearance, "standoff": _Standoff, "altitude": _Altitude, "collisions": _Collisions,
             "time_limit": _TimeLimit}


@dataclass
class _Context:
    delta: float
    heights: HeightMap | None = None
    cells: CellDistance | None = None
    collisions: int = 0
    elapsed: float = 0.0
    others_hold: bool = False
    others_first: float | None = None     # s of simulated time at which the others first held


class FlightTracker:
    """Checks a flight step by step and says when the episode may end.

    ``world`` is the episode's world as built (before any policy call), or None when no
    check needs it (only ``clearance`` and ``standoff`` do). ``delta`` is s per step.
    """

    def __init__(self, resolved: ResolvedSpec, world=None, delta: float = 0.01):
        kinds = {c.kind for c in resolved.checks}
        if resolved.needs_world and world is None:
            raise TaskSpecError(f"a {' or '.join(sorted(kinds & set(WORLD_KINDS)))} check needs "
                                "the world", field="checks")
        heights = HeightMap.from_world(world) if kinds & {"clearance", "standoff"} else None
        cells = CellDistance.from_world(world) if "standoff" in kinds else None
        self.ctx = _Context(float(delta), heights, cells)
        self.resolved = resolved
        self.checkers = [_CHECKERS[c.kind](c, self.ctx) for c in resolved.checks]
        self.timed = [k for k in self.checkers if isinstance(k, _TimeLimit)]
        self.others = [k for k in self.checkers if not isinstance(k, _TimeLimit)]
        self.steps = 0
        self.ended_at: int | None = None

    def observe(self, step: int, pos, collisions_total: int) -> bool:
        """Feed step ``step`` (0-based): the position after it (m) and the episode's collision
        count so far. True when every check holds now (the episode ends here)."""
        pos = (float(pos[0]), float(pos[1]), float(pos[2]))
        ctx = self.ctx
        ctx.collisions = int(collisions_total)
        ctx.elapsed = (step + 1) * ctx.delta
        others_hold = True
        for checker in self.others:
            checker.observe(step, pos, ctx)
            if others_hold and not checker.holds(pos, ctx):
                others_hold = False
        ctx.others_hold = others_hold
        if others_hold and ctx.others_first is None:
            ctx.others_first = ctx.elapsed
        self.steps = step + 1
        done = others_hold
        for checker in self.timed:
            done = done and checker.holds(pos, ctx)
        if done and self.ended_at is None:
            self.ended_at = step
        return done

    def results(self, final_pos) -> list[dict]:
        """``[{"kind", "passed", "score", "account"}]`` in spec order, judged at ``final_pos``
        (the position at the last observed step)."""
        pos = _tuple(final_pos)
        out = []
        for check, checker in zip(self.resolved.checks, self.checkers):
            passed, score, account = checker.result(pos, self.ctx)
            out.append({"kind": check.kind, "passed": bool(passed),
                        "score": round(float(max(0.0, min(1.0, score))), 4), "account": account})
        return out


@dataclass
class FlightGrade:
    """The verdict on one whole flight: where it ended, success, mean score, per-check results."""

    end_step: int | None
    success: bool
    score: float
    checks: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"end_step": self.end_step, "success": self.success, "score": self.score,
                "checks": self.checks}


def summarize(checks: list[dict]) -> tuple[bool, float]:
    """(success, score) from per-check results: all passed; the mean of the scores."""
    if not checks:
        return False, 0.0
    return all(c["passed"] for c in checks), round(sum(c["score"] for c in checks) / len(checks), 4)


def grade_flight(resolved: ResolvedSpec, positions, collisions_total, world=None,
                 delta: float = 0.01) -> FlightGrade:
    """Grade a recorded flight: ``positions`` (N, 3) m after each step, ``collisions_total``
    (N,) the episode's collision count up to and including each step.

    The flight ends at the first step at which every check holds, else at its last step;
    the verdicts are those of a ``FlightTracker`` fed the same steps. An empty flight fails
    every check with score 0.
    """
    positions = np.asarray(positions, dtype=float).reshape(-1, 3)
    totals = np.asarray(collisions_total).reshape(-1)
    if len(totals) != len(positions):
        raise ValueError(f"collisions_total has {len(totals)} steps, positions {len(positions)}")
    tracker = FlightTracker(resolved, world, delta)
    if not len(positions):
        checks = [{"kind": c.kind, "passed": False, "score": 0.0, "account": f"{c.kind}: no step flown"}
                  for c in resolved.checks]
        return FlightGrade(None, False, 0.0, checks)
    end = len(positions) - 1
    for step in range(len(positions)):
        if tracker.observe(step, positions[step], int(totals[step])):
            end = step
            break
    checks = tracker.results(positions[end])
    success, score = summarize(checks)
    return FlightGrade(end, success, score, checks)


# --------------------------------------------------------------------------------------------
# The route a spec asks for (for step budgets)
# --------------------------------------------------------------------------------------------

def route_length(resolved: ResolvedSpec, start) -> float:
    """Metres of the shortest-looking route through the spec's points from ``start``: reach,
    dwell and visit points in order (visits ``laps`` times; a dwell's seconds count as that
    long at ``CRUISE_SPEED_MPS``), each orbit's circle at its mid radius for its degrees, then
    an ``end_near`` point. A rough estimate for step budgets."""
    here = np.asarray(start, dtype=float)
    total = 0.0
    ends = []
    for check in resolved.checks:
        if check.kind in ("reach", "dwell"):
            total += float(np.linalg.norm(check.points["point"] - here))
            here = check.points["point"]
            if check.kind == "dwell":
                total += check.fields["seconds"] * CRUISE_SPEED_MPS
        elif check.kind == "visit":
            for _ in range(check.fields["laps"]):
                for p in check.points["points"]:
                    total += float(np.linalg.norm(p - here))
                    here = p
        elif check.kind == "orbit":
            f = check.fields
            mid = (f["min_radius"] + f["max_radius"]) / 2.0
            centre = check.points["centre"]
            to_centre = here - centre
            flat = math.hypot(float(to_centre[0]), float(to_centre[1]))
            total += abs(flat - mid) + abs(float(to_centre[2]))
            total += 2.0 * math.pi * mid * f["degrees"] / 360.0
            if flat > 0:
                here = centre + np.array([to_centre[0] / flat * mid, to_centre[1] / flat * mid, 0.0])
        elif check.kind == "end_near":
            ends.append(check.points["point"])
    for p in ends:
        total += float(np.linalg.norm(p - here))
        here = p
    return total


#: Cruise speed (m/s) of an A*-planned straight flight at urgency 0.9 on the embedded backend
#: (delta 0.01, QuadDynamics): 20, 40 and 80 m flights each averaged 2.42-2.44 m/s, start to
#: within 1.0 m of the end (measured 2026-11-30 on a shared 2-core machine).
CRUISE_SPEED_MPS = 2.4
BUDGET_MARGIN = 1.5          # route time x this ...
BUDGET_EXTRA_S = 10.0        # ... plus this, for take-off, stops at waypoints and replanning
MIN_STEP_BUDGET = 5000       # never fewer steps than bgen always gave an episode


MAX_STEP_BUDGET = 1_000_000   # the most steps any front door gives an episode


def budget_warning(spec: TaskSpec, route_m: float, max_steps: int, delta: float) -> str | None:
    """Why episodes of ``max_steps`` steps of ``delta`` s cannot, or likely cannot, fly
    ``spec`` (``route_m``: ``route_length``'s estimate, m), or None when they have room.

    Cannot: the spec's dwells alone last longer than an episode. Likely cannot: the route
    takes longer than an episode at ``CRUISE_SPEED_MPS``, which planned flights average.
    """
    episode_s = max_steps * delta
    dwell_s = sum(check.fields["seconds"] for check in spec.checks if check.kind == "dwell")
    if dwell_s > episode_s:
        return (f"max_steps {max_steps} x delta {delta:g} s gives episodes of {episode_s:g} s, "
                f"shorter than the task spec's {dwell_s:g} s of dwell: no episode can pass")
    route_s = route_m / CRUISE_SPEED_MPS
    if route_s > episode_s:
        return (f"max_steps {max_steps} x delta {delta:g} s gives episodes of {episode_s:g} s; "
                f"the task spec's route of about {route_m:.0f} m takes about {route_s:.0f} s "
                f"at the {CRUISE_SPEED_MPS:g} m/s planned flights average (dwells included): "
                f"episodes will likely end before it is flown")
    return None


def step_budget(route_m: float, delta: float) -> int:
    """Steps for a route of ``route_m`` metres at ``CRUISE_SPEED_MPS``, with margin; at least
    ``MIN_STEP_BUDGET``, at most ``MAX_STEP_BUDGET``."""
    seconds = route_m / CRUISE_SPEED_MPS * BUDGET_MARGIN + BUDGET_EXTRA_S
    steps = seconds / delta
    if not math.isfinite(steps) or steps >= MAX_STEP_BUDGET:
        return MAX_STEP_BUDGET
    return max(MIN_STEP_BUDGET, int(math.ceil(steps)))
