"""FixedLookaheadChaser and ChaseTarget (voxelsim ``voxelsim/src/agent/chase.rs``).

The chaser reads the agent and returns a target for the dynamics; it never changes the
agent. The progress part of the target is applied by ``QuadDynamics``:

    HOLD                     nothing to do (the agent holds, or its trajectory is empty)
    PROGRESS_TO, s, trim     set the trajectory progress to s; drop intents left behind
    COMPLETE, Hold(...)      the action is done: the agent now holds the end cell

One step for an agent with an action (lengths in metres along the trajectory, ``u`` the
urgency sampled there; defaults ``v_max_base = 20``, ``s_lookahead_base = 2``,
``min_step = 2.5``):

* ``s*`` = progress of the path point nearest the agent within [progress, length];
* the agent may advance only when it is within 1.0 of that point; then the progress moves to
  ``s*`` but by at most ``v_max_base · u · delta`` and at least ``min_step · u · delta``;
* the target is the point ``s_lookahead_base · u`` ahead (capped at the end), with velocity
  ``u ×`` voxelsim's unit path direction and acceleration ``0.4 u ×`` its unit difference;
* the action completes when the new progress reaches the end, or when ``s*`` is the end and
  the agent is past it along the path or within 1.0 of it.

So ``20 · u`` m/s is the fastest the progress may run ahead, not the flight speed: the
dynamics fly towards a target ``2 u`` ahead with ``u`` m/s feed-forward (see dynamics.py).

Internal fields of ChaseTarget (voxelsim exposes none to Python): ``_pos``, ``_vel``,
``_acc`` (tuples of floats), ``_yaw`` (float), ``_progress`` (one of the tuples above).
"""

from __future__ import annotations

from bgen.sim.embedded.agent import Action, Agent, Hold
from bgen.sim.embedded.convert import PanicException, to_float, to_instance
from bgen.sim.embedded.trajectory import EPSILON
from bgen.sim.embedded.convert import Sealed

HOLD = 0
PROGRESS_TO = 1
COMPLETE = 2

_PROGRESS_HOLD = (HOLD,)
_ZERO = (0.0, 0.0, 0.0)
DISTANCE_THRESHOLD = 1.0
DEFAULT_URGENCY = 0.8


class ChaseTarget(Sealed):
    """Position/velocity/acceleration/yaw target plus a progress update (no Python fields)."""

    __slots__ = ("_pos", "_vel", "_acc", "_yaw", "_progress")

    def __init__(self, *args, **kwargs):
        raise TypeError("No constructor defined for ChaseTarget")


def _target(pos, vel, acc, yaw, progress) -> ChaseTarget:
    target = object.__new__(ChaseTarget)
    target._pos = pos
    target._vel = vel
    target._acc = acc
    target._yaw = yaw
    target._progress = progress
    return target


def _f64_clamp(x: float, lo: float, hi: float) -> float:
    if not lo <= hi:
        raise PanicException(f"min > max, or either was NaN. min = {lo!r}, max = {hi!r}")
    return lo if x < lo else (hi if x > hi else x)


class FixedLookaheadChaser(Sealed):
    """voxelsim's fixed-lookahead chaser (no constructor; use ``default_py()``)."""

    __slots__ = ("_v_max_base", "_s_lookahead_base", "_min_step")

    def __init__(self, *args, **kwargs):
        raise TypeError("No constructor defined for FixedLookaheadChaser")

    @staticmethod
    def default_py() -> "FixedLookaheadChaser":
        chaser = object.__new__(FixedLookaheadChaser)
        chaser._v_max_base = 20.0
        chaser._s_lookahead_base = 2.0
        chaser._min_step = 2.5
        return chaser

    def step_chase_py(self, agent, delta) -> ChaseTarget:
        if type(agent) is not Agent:
            agent = to_instance(agent, Agent, "agent")
        if type(delta) is not float:
            delta = to_float(delta, "delta")
        state = agent._state
        if type(state) is not Action:
            return _target(tuple(map(float, state.coord)), _ZERO, _ZERO, state.yaw, _PROGRESS_HOLD)
        return self._chase_action(agent._pos, state, delta)

    def _chase_action(self, pos, action, delta) -> ChaseTarget:
        traj = action._trajectory
        s_end = traj.length
        if s_end <= EPSILON:
            return _target(pos, _ZERO, _ZERO, 0.0, _PROGRESS_HOLD)
        s_cur = traj.progress
        urgency = traj.sample_urgencies(s_cur)
        if urgency is None:
            urgency = DEFAULT_URGENCY
        ds_max = self._v_max_base * urgency * delta
        ds_min = self._min_step * delta * urgency
        s_lookahead = self._s_lookahead_base * urgency

        s_star, p_star, d2_star = traj.nearest(s_cur, s_end, pos)
        can_advance = p_star is not None and d2_star < DISTANCE_THRESHOLD * DISTANCE_THRESHOLD

        overshot_end = False
        if abs(s_end - s_star) < 1e-6:
            p_end = traj.position(s_end)
            v_end = traj.velocity(s_end)
            if p_end is not None and v_end is not None:
                ex, ey, ez = pos[0] - p_end[0], pos[1] - p_end[1], pos[2] - p_end[2]
                vx, vy, vz = v_end
                ahead = (vx * vx + vy * vy + vz * vz) > 1e-12 and (ex * vx + ey * vy + ez * vz) > 0.0
                close = ex * ex + ey * ey + ez * ez < DISTANCE_THRESHOLD * DISTANCE_THRESHOLD
                overshot_end = ahead or close

        if can_advance:
            s_updated = _f64_clamp(s_star, s_cur, s_cur + ds_max)
        else:
            s_updated = s_cur
        s_tgt = s_updated + s_lookahead
        if s_tgt > s_end:
            s_tgt = s_end

        p_tgt = traj.position(s_tgt)
        if s_tgt >= 0.99:
            v_nom, a_nom = traj.tail_vectors()
        else:
            v_nom, a_nom = traj.velocity(s_tgt), traj.acceleration(s_tgt)
        yaw = traj.sample_yaw(s_tgt)
        u_tgt = traj.sample_urgencies(s_tgt)
        if p_tgt is None or v_nom is None or a_nom is None or yaw is None or u_tgt is None:
            end = action._end_coord()
            return _target(tuple(map(float, end)), _ZERO, _ZERO, 0.0,
                           (COMPLETE, Hold(end, 0.0)))
        vel = (v_nom[0] * u_tgt, v_nom[1] * u_tgt, v_nom[2] * u_tgt)
        k = 0.4 * u_tgt
        acc = (a_nom[0] * k, a_nom[1] * k, a_nom[2] * k)
        if can_advance:
            s_min = s_cur + ds_min
            s_next = s_updated if s_updated > s_min else s_min
        else:
            s_next = s_updated
        if overshot_end or s_next >= s_end:
            progress = (COMPLETE, Hold(action._end_coord(), yaw))
        else:
            progress = (PROGRESS_TO, s_next, True)
        return _target(p_tgt, vel, acc, yaw, progress)
