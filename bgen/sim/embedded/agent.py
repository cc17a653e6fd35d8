"""Agent, Action and PyAgentStateUpdate (voxelsim ``voxelsim/src/agent/mod.rs``, ``py.rs``).

An agent is either holding a cell (``Hold``) or executing an ``Action``: a queue of
``ActionIntent`` whose moves, chained from the action's origin cell, define one trajectory.
The chaser (chase.py) reads the agent and proposes a target; the dynamics (dynamics.py)
moves the agent and applies the chaser's progress update: advance along the trajectory
(dropping intents left behind) or finish and hold the end cell.

Internal fields (read by the wire codec and the vision code; keep them in sync with it):

    Agent._id         int (usize)
    Agent._pos        (x, y, z) floats, world metres = voxel units, z down (Up is -z)
    Agent._vel        (x, y, z) floats
    Agent._thrust     (x, y, z) floats (voxelsim never changes it from zero)
    Agent._rate       (x, y, z) floats (voxelsim's QuadDynamics never writes it)
    Agent._attitude   (w, x, y, z) unit quaternion  — note: serde/nalgebra order is (x, y, z, w)
    Agent._state      a ``Hold`` or an ``Action``

    Hold.coord        (x, y, z) ints;  Hold.yaw  float          (AgentState::Hold)
    Action._intents   list of ActionIntent, front first          (intent_queue)
    Action._trajectory  trajectory.Trajectory                    (trajectory)
    Action._origin    (x, y, z) ints                             (origin)

Errors are voxelsim's ``ActionError`` texts ("Duplicate centroid", "No commands", "No intent",
"Invalid progress") behind the prefix of the Python method that failed, raised as plain
``Exception`` like PyO3's ``PyException``.
"""

from __future__ import annotations

import math

from bgen.sim.embedded.camera import CameraOrientation, CameraView, quat_mul
from bgen.sim.embedded.convert import (PanicException, to_coord, to_float, to_float_array,
                                       to_instance, to_int, to_list_of, to_optional)
from bgen.sim.embedded.intent import ActionIntent
from bgen.sim.embedded.trajectory import Trajectory
from bgen.sim.embedded.convert import Sealed

DUPLICATE_CENTROID = "Duplicate centroid"
NO_COMMANDS = "No commands"
NO_INTENT = "No intent"
INVALID_PROGRESS = "Invalid progress"

_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


class ActionError(Exception):
    """voxelsim's ActionError; ``str()`` is its Display text."""


def round_to_i32(x: float) -> int:
    """Rust ``x.round() as i32``: halves away from zero, saturating, NaN -> 0."""
    if x != x:
        return 0
    if x >= _I32_MAX:
        return _I32_MAX
    if x <= _I32_MIN:
        return _I32_MIN
    r = math.floor(abs(x))
    if abs(x) - r >= 0.5:
        r += 1
    return int(r) if x >= 0 else -int(r)


class Hold:
    """``AgentState::Hold { coord, yaw }`` (immutable, so it is shared freely)."""

    __slots__ = ("coord", "yaw")

    def __init__(self, coord, yaw):
        self.coord = coord
        self.yaw = yaw

    def __repr__(self):
        return f"Hold(coord={self.coord}, yaw={self.yaw})"


# --- centroids and trajectories --------------------------------------------------------

def centroids(moves, origin) -> list:
    """Cells reached by ``moves`` from ``origin``; a cell visited twice is an error."""
    x, y, z = origin
    seen = {origin}
    out = []
    for move in moves:
        v = move._vector
        if v is None:  # Undecided: no cell
            continue
        x, y, z = x + v[0], y + v[1], z + v[2]
        cell = (x, y, z)
        out.append(cell)
        if cell in seen:
            raise ActionError(DUPLICATE_CENTROID)
        seen.add(cell)
    return out


def chained_centroids(intents, origin) -> list:
    """(cell, urgency, yaw) for every cell of every intent, each chained from the last."""
    out = []
    for intent in intents:
        cells = centroids(intent._moves, origin)
        if cells:
            origin = cells[-1]
        u, yaw = intent._urgency, intent._yaw
        out.extend((c, u, yaw) for c in cells)
    return out


_TRAJECTORY_CACHE: dict = {}
_TRAJECTORY_CACHE_SIZE = 64


def build_trajectory(intents, origin) -> Trajectory:
    """The trajectory of ``intents`` chained from ``origin`` (raises ActionError).

    Building smooths the path in Python (about 0.1–1 ms for tens of cells), so the last few
    results are kept: a policy that re-issues the same intent from the same cell each step
    pays for it once.
    """
    key = (origin, tuple((tuple(m._code for m in i._moves), i._urgency, i._yaw) for i in intents))
    cached = _TRAJECTORY_CACHE.get(key)
    if cached is None:
        cached = Trajectory.build(origin, chained_centroids(intents, origin))
        if len(_TRAJECTORY_CACHE) >= _TRAJECTORY_CACHE_SIZE:
            _TRAJECTORY_CACHE.pop(next(iter(_TRAJECTORY_CACHE)))
        _TRAJECTORY_CACHE[key] = cached
    return cached.copy()


def _require_moves(intent) -> None:
    if not intent._moves:
        raise PanicException("assertion failed: !intent.move_sequence.is_empty()")


class Action(Sealed):
    """An intent queue and the trajectory through it (no constructor, as in voxelsim)."""

    __slots__ = ("_intents", "_trajectory", "_origin")

    def __init__(self, *args, **kwargs):
        raise TypeError("No constructor defined for Action")

    # --- constructors (voxelsim Action::new / new_oneshot) ------------------------------
    @classmethod
    def _make(cls, intents, trajectory, origin) -> "Action":
        self = object.__new__(cls)
        self._intents, self._trajectory, self._origin = intents, trajectory, origin
        return self

    @classmethod
    def _new(cls, intents, origin) -> "Action":
        for intent in intents:
            if not intent._moves:
                raise ActionError(NO_COMMANDS)
        intents = list(intents)
        return cls._make(intents, build_trajectory(intents, origin), origin)

    @classmethod
    def _new_oneshot(cls, intent, origin) -> "Action":
        if not intent._moves:
            raise ActionError(NO_COMMANDS)
        return cls._make([intent], build_trajectory([intent], origin), origin)

    def _copy(self) -> "Action":
        return Action._make(list(self._intents), self._trajectory.copy(), self._origin)

    # --- queue edits ---------------------------------------------------------------------
    def _push_back_intent(self, intent) -> None:
        # As in voxelsim, the intent stays queued even when the new trajectory fails.
        self._intents.append(intent)
        progress = self._trajectory.progress
        self._trajectory = build_trajectory(self._intents, self._origin)
        self._trajectory.progress = progress

    def _truncate_replace(self, replace) -> None:
        progress = self._trajectory.progress
        idx = self._intent_for_progress(progress)
        if idx is None:
            raise ActionError(INVALID_PROGRESS)
        keep = len(self._intents) - (idx + 1)
        del self._intents[keep:]
        self._intents.extend(replace)
        self._trajectory = build_trajectory(self._intents, self._origin)
        self._trajectory.progress = progress

    def _pop_front_intent(self):
        traj = self._trajectory
        old_m = traj.move_for_progress(traj.progress)
        if old_m is None:
            raise ActionError(INVALID_PROGRESS)
        if not self._intents:
            raise ActionError(NO_INTENT)
        front = self._intents.pop(0)
        rx, ry, rz = front._relative_end()
        ox, oy, oz = self._origin
        self._origin = (ox + rx, oy + ry, oz + rz)
        self._trajectory = build_trajectory(self._intents, self._origin)
        new_m = max(old_m - len(front._moves), 0.0)
        progress = self._trajectory.progress_for_move(new_m)
        if progress is None:
            raise ActionError(INVALID_PROGRESS)
        self._trajectory.progress = progress
        return front

    # --- progress ------------------------------------------------------------------------
    def _intent_for_progress(self, progress):
        """Index of the intent being flown at ``progress`` (voxelsim's rule), or None."""
        move_buf = 0
        traj = self._trajectory
        for i, intent in enumerate(self._intents):
            _require_moves(intent)
            move_buf += len(intent._moves) - 1
            p = traj.progress_for_move_idx(move_buf)
            if p is None:
                return None
            if progress < p:
                return i
        return None

    def _update_progress(self, progress, trim_tail) -> None:
        traj = self._trajectory
        length = traj.length
        traj.progress = 0.0 if progress < 0.0 else (length if progress > length else progress)
        if trim_tail:
            idx = self._intent_for_progress(progress)
            if idx is not None:
                for _ in range(max(idx - 1, 0)):
                    self._pop_front_intent()

    def _end_coord(self):
        x, y, z = self._origin
        for intent in self._intents:
            rx, ry, rz = intent._relative_end()
            x, y, z = x + rx, y + ry, z + rz
        return (x, y, z)

    # --- Python API ----------------------------------------------------------------------
    def get_origin(self):
        return self._origin

    def set_origin(self, x, y, z) -> None:
        self._origin = (to_int(x, "x"), to_int(y, "y"), to_int(z, "z"))

    def intent_count(self) -> int:
        return len(self._intents)

    def get_intent_queue(self) -> list:
        return list(self._intents)

    def appending_intent_py(self, intent) -> "Action":
        intent = to_instance(intent, ActionIntent, "intent")
        clone = self._copy()
        try:
            clone._push_back_intent(intent)
        except ActionError as error:
            raise Exception(f"Could not append intent to action: {error}") from None
        return clone


# --- state updates -----------------------------------------------------------------------

_PUSH, _REPLACE, _TRUNCATE, _HOLD = "Push", "Replace", "Truncate", "Hold"


class PyAgentStateUpdate(Sealed):
    """A queued change of agent state; build with the static methods (voxelsim's name)."""

    __slots__ = ("_kind", "_payload")

    def __init__(self, *args, **kwargs):
        raise TypeError("No constructor defined for PyAgentStateUpdate")

    @classmethod
    def _make(cls, kind, payload) -> "PyAgentStateUpdate":
        self = object.__new__(cls)
        self._kind, self._payload = kind, payload
        return self

    @staticmethod
    def push(intent) -> "PyAgentStateUpdate":
        """Append ``intent`` to the current action (or start one)."""
        return PyAgentStateUpdate._make(_PUSH, to_instance(intent, ActionIntent, "intent"))

    @staticmethod
    def replace(intents) -> "PyAgentStateUpdate":
        """Drop the current action; fly ``intents`` from the current cell."""
        return PyAgentStateUpdate._make(_REPLACE, tuple(to_list_of(intents, ActionIntent, "intents")))

    @staticmethod
    def truncate(intents) -> "PyAgentStateUpdate":
        """Cut the queue behind the intent in flight (voxelsim's count) and append ``intents``."""
        return PyAgentStateUpdate._make(_TRUNCATE, tuple(to_list_of(intents, ActionIntent, "intents")))

    @staticmethod
    def hold(coord=None, yaw=None) -> "PyAgentStateUpdate":
        """Hold ``coord`` (default: the current cell) facing ``yaw`` (default: current yaw)."""
        return PyAgentStateUpdate._make(_HOLD, (to_optional(coord, to_coord, "coord"),
                                                to_optional(yaw, to_float, "yaw")))


AgentStateUpdate = PyAgentStateUpdate


# --- the agent ---------------------------------------------------------------------------

class Agent(Sealed):
    """A drone: kinematic state plus what it is doing (see the module docstring for fields)."""

    __slots__ = ("_id", "_pos", "_vel", "_thrust", "_rate", "_attitude", "_state")

    def __init__(self, id):  # noqa: A002 - voxelsim's argument name
        self._id = to_int(id, "id", "usize")
        self._pos = (0.0, 0.0, 0.0)
        self._vel = (0.0, 0.0, 0.0)
        self._thrust = (0.0, 0.0, 0.0)
        self._rate = (0.0, 0.0, 0.0)
        self._attitude = (1.0, 0.0, 0.0, 0.0)
        self._state = Hold((0, 0, 0), 0.0)

    # --- internal helpers ------------------------------------------------------------------
    def _coord(self):
        x, y, z = self._pos
        return (round_to_i32(x), round_to_i32(y), round_to_i32(z))

    def _yaw(self) -> float:
        """voxelsim's ``Agent::get_yaw`` (angle between Forward and a projection; kept as is)."""
        w, x, y, z = self._attitude
        # drone forward = attitude * (1, 0, 0); only its z component enters the formula.
        fz = 2.0 * (x * z - w * y)
        # proj = forward - (drone_forward · up) up with up = (0, 0, -1)  ->  (1, 0, -fz)
        norm = math.sqrt(1.0 + fz * fz)
        return math.acos(max(-1.0, min(1.0, 1.0 / norm)))

    def _update_state(self, kind, payload) -> None:
        state = self._state
        if kind == _PUSH:
            if isinstance(state, Action):
                state._push_back_intent(payload)
            else:
                self._state = Action._new_oneshot(payload, self._coord())
        elif kind == _REPLACE:
            self._state = Action._new(payload, self._coord())
        elif kind == _TRUNCATE:
            if isinstance(state, Action):
                state._truncate_replace(payload)
            else:
                self._state = Action._new(payload, self._coord())
        else:
            coord, yaw = payload
            self._state = Hold(coord if coord is not None else self._coord(),
                               yaw if yaw is not None else self._yaw())

    # --- Python API ------------------------------------------------------------------------
    def perform_oneshot_py(self, intent) -> None:
        """Replace whatever the agent is doing with this one intent."""
        intent = to_instance(intent, ActionIntent, "intent")
        try:
            self._state = Action._new_oneshot(intent, self._coord())
        except ActionError as error:
            raise Exception(f"Could not perform intent: {error}") from None

    def push_back_intent_py(self, intent) -> None:
        """Queue ``intent`` behind the current action, or start an action with it."""
        intent = to_instance(intent, ActionIntent, "intent")
        state = self._state
        if isinstance(state, Action):
            try:
                state._push_back_intent(intent)
            except ActionError as error:
                raise Exception(f"Could not push back intent: {error}") from None
        else:
            try:
                self._state = Action._new_oneshot(intent, self._coord())
            except ActionError as error:
                raise Exception(f"Could not perform intent: {error}") from None

    def update_state_py(self, update) -> None:
        update = to_instance(update, PyAgentStateUpdate, "update")
        try:
            self._update_state(update._kind, update._payload)
        except ActionError as error:
            raise Exception(f"Could not update agent state: {error}") from None

    def camera_view_py(self, orientation) -> CameraView:
        orientation = to_instance(orientation, CameraOrientation, "orientation")
        return CameraView._from_pos_quat(self._pos, quat_mul(self._attitude, orientation._quat))

    def get_action_py(self):
        """A copy of the current action, or None while holding."""
        state = self._state
        if type(state) is Action:
            return state._copy()
        return None

    def set_pos(self, pos) -> None:
        self._pos = to_float_array(pos, 3, "pos")

    def get_pos(self) -> list:
        return list(self._pos)

    def get_coord_py(self) -> list:
        return list(self._coord())

    def set_hold_py(self, coord, yaw) -> None:
        """Teleport to ``coord`` and hold it facing ``yaw`` (velocity and attitude unchanged)."""
        coord = to_coord(coord, "coord")
        yaw = to_float(yaw, "yaw")
        self._pos = (float(coord[0]), float(coord[1]), float(coord[2]))
        self._state = Hold(coord, yaw)
