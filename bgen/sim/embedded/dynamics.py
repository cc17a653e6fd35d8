"""Quadrotor dynamics: QuadParams, QuadDynamics, EnvState (voxelsim-simulator ``dynamics/``).

The model is voxelsim's ``QuadDynamics`` (``dynamics/quad.rs`` + ``pid.rs``) driving a rigid
body integrated like ``peng_quad::Quadrotor`` (RK4, quadratic drag). One call, for a chase
target with position ``p*``, velocity ``v*``, acceleration ``a*`` and yaw ``ψ*``:

1. Progress: PROGRESS_TO updates the action's progress (dropping finished intents);
   COMPLETE makes the agent hold the end cell. Anything but PROGRESS_TO is *idle*.
2. Acceleration set-point. Moving: PX4-style cascade with the "moving" gains,
   ``v_sp = v* + Kp (p* - p)``, ``a = Kv (v_sp - v) + Ki ∫ + Kd d/dt + a*`` (0.05 dead band,
   |a_xy| <= 6, a_z in [-4, 4], integrator frozen when saturated). Idle: velocity brake
   ``a = -(1.2, 1.2, 1.8) · v`` — there is no position hold.
3. Thrust = mass · |a + (0, 0, g)| clamped to [0.05, 2.5] × hover; its direction is the body
   z axis wanted. Yaw set-point follows ψ* with a rate (<= 1 rad/s) and acceleration
   (<= 5 rad/s²) limited generator; idle keeps the current yaw.
4. Attitude error (world-frame rotation vector × (6, 6, 3)) → body-rate set-point (dead band
   and softening when idle, norm <= 4.5 moving / 3.5 idle, 10 Hz low-pass) → rate PID
   (gains blended between hover and moving profiles with a 0.6 s time constant) with
   anti-windup, passive damping, torque clamp and slew limit (6, 6, 5 N·m/s).
5. Rigid body, one RK4 step of ``delta``: ``m dv/dt = R (0, 0, T) - (0, 0, m g) - c |v| v``,
   ``I dω/dt = τ - ω × I ω``, ``dq/dt = q ⊗ (0, ω) / 2``.

Gravity is along -z in this model while voxelsim's world has Up = -z: the controller cancels
it either way, so only the sign of the (rarely looked at) attitude differs from intuition —
exactly as in voxelsim. ``EnvState`` (g = (0, 0, -9.8), wind = 0) is accepted and ignored,
as voxelsim's QuadDynamics ignores it.

Speed: the target is ``2 u`` ahead with ``u`` m/s feed-forward (u = urgency), so cruise is
``v ≈ 3 u`` less what quadratic drag (c = 0.1) costs against the 2.4 velocity gain:
``2.4 (3u - v) = 0.1 v²`` gives ≈ 2.7 m/s at u = 1, ≈ 1.45 at u = 0.5, ≈ 4.9 at u = 2; the
6 m/s² horizontal limit caps it near 7.7 m/s. The chaser's ``20 u`` is a cap on how fast
progress may run ahead, not a speed the drone reaches.

Differences from voxelsim: state and integration are f64 (voxelsim rounds the rigid-body
state to f32 every step); the orientation and body rates live in the QuadDynamics object, as
in voxelsim (so one QuadDynamics per agent).

``px4`` (voxelsim's optional PX4 controller) is not provided: ``vxs.px4`` does not exist, so a
caller's ``vxs.px4.Px4Dynamics.default_py()`` raises AttributeError and falls back to
``QuadDynamics``, as the reference runner does on a build without the px4 feature.
"""

from __future__ import annotations

import math

from bgen.sim.embedded.agent import Action, ActionError, Agent
from bgen.sim.embedded.chase import COMPLETE, PROGRESS_TO, ChaseTarget
from bgen.sim.embedded.convert import to_float, to_instance
from bgen.sim.embedded.convert import Sealed

_TWO_PI = 2.0 * math.pi


class EnvState(Sealed):
    """Environment seen by the dynamics (``g``, ``wind``); no Python fields, as in voxelsim."""

    __slots__ = ("_g", "_wind")

    def __init__(self, *args, **kwargs):
        raise TypeError("No constructor defined for EnvState")

    @staticmethod
    def default_py() -> "EnvState":
        env = object.__new__(EnvState)
        env._g = (0.0, 0.0, -9.8)
        env._wind = (0.0, 0.0, 0.0)
        return env


class _PosVelParams:
    """PX4-like position/velocity gains (``Px4PosVelParams``)."""

    __slots__ = ("pos_p", "vel_p", "vel_i", "vel_d", "acc_hor_max", "acc_up_max",
                 "acc_down_max", "i_limit")

    def __init__(self, pos_p, vel_p, vel_i, vel_d, acc_hor_max, acc_up_max, acc_down_max,
                 i_limit):
        self.pos_p, self.vel_p, self.vel_i, self.vel_d = pos_p, vel_p, vel_i, vel_d
        self.acc_hor_max, self.acc_up_max, self.acc_down_max = acc_hor_max, acc_up_max, acc_down_max
        self.i_limit = i_limit


class _RateParams:
    """Body-rate PID gains (``RatePIDParams``)."""

    __slots__ = ("kp", "ki", "kd", "max_torque", "max_integral", "d_lpf_hz", "flat")

    def __init__(self, kp, ki, kd, max_torque, max_integral, d_lpf_hz):
        self.kp, self.ki, self.kd = kp, ki, kd
        self.max_torque, self.max_integral, self.d_lpf_hz = max_torque, max_integral, d_lpf_hz
        self.flat = kp + ki + kd + max_torque + max_integral + (d_lpf_hz,)  # for one unpack


HOVER_POS = _PosVelParams((1.0, 1.0, 1.0), (2.0, 2.0, 2.0), (0.05, 0.05, 0.10),
                          (0.40, 0.40, 0.30), 4.0, 3.5, 3.5, (0.5, 0.5, 0.5))
MOVING_POS = _PosVelParams((1.0, 1.0, 1.0), (2.4, 2.4, 2.0), (0.0, 0.0, 0.2),
                           (0.7, 0.7, 0.25), 6.0, 4.0, 4.0, (1.5, 1.5, 2.0))
HOVER_RATE = _RateParams((1.8, 1.8, 2.4), (0.01, 0.01, 0.01), (0.14, 0.14, 0.06),
                         (0.20, 0.20, 0.35), (0.20, 0.20, 0.10), 12.0)
MOVING_RATE = _RateParams((2.6, 2.6, 4.2), (0.015, 0.015, 0.03), (0.16, 0.16, 0.045),
                          (0.28, 0.28, 0.50), (0.36, 0.36, 0.18), 15.0)


class QuadParams(Sealed):
    """Quadrotor parameters; only ``default_py()`` exists in Python, as in voxelsim."""

    __slots__ = ("_mass", "_gravity", "_drag_coefficient", "_inertia", "_bounding_box",
                 "_pos_params", "_moving_pos_params", "_rate_params", "_moving_rate_params",
                 "_att_p", "_thrust_min", "_thrust_max", "_control_sign")

    def __init__(self, *args, **kwargs):
        raise TypeError("No constructor defined for QuadParams")

    @staticmethod
    def default_py() -> "QuadParams":
        params = object.__new__(QuadParams)
        params._mass = 1.0
        params._gravity = 9.81
        params._drag_coefficient = 0.1
        params._inertia = (0.0347563, 0.0458929, 0.0977)  # diagonal of the inertia matrix
        params._bounding_box = (0.5, 0.5, 0.1)
        params._pos_params = HOVER_POS
        params._moving_pos_params = MOVING_POS
        params._rate_params = HOVER_RATE
        params._moving_rate_params = MOVING_RATE
        params._att_p = (6.0, 6.0, 3.0)
        params._thrust_min = 0.05
        params._thrust_max = 2.5
        params._control_sign = (1.0, 1.0, 1.0)
        return params


def _wrap(a: float) -> float:
    while a > math.pi:
        a -= _TWO_PI
    while a < -math.pi:
        a += _TWO_PI
    return a


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else (hi if x > hi else x)


def _div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        return math.nan if (a != a or a == 0.0) else math.copysign(math.inf, a) * math.copysign(1.0, b)


def quat_from_matrix(m00, m01, m02, m10, m11, m12, m20, m21, m22):
    """Unit quaternion (w, x, y, z) of a rotation matrix (nalgebra's branch order)."""
    tr = m00 + m11 + m22
    if tr > 0.0:
        d = math.sqrt(tr + 1.0) * 2.0
        return (0.25 * d, (m21 - m12) / d, (m02 - m20) / d, (m10 - m01) / d)
    if m00 > m11 and m00 > m22:
        d = math.sqrt(1.0 + m00 - m11 - m22) * 2.0
        return ((m21 - m12) / d, 0.25 * d, (m01 + m10) / d, (m02 + m20) / d)
    if m11 > m22:
        d = math.sqrt(1.0 + m11 - m00 - m22) * 2.0
        return ((m02 - m20) / d, (m01 + m10) / d, 0.25 * d, (m12 + m21) / d)
    d = math.sqrt(1.0 + m22 - m00 - m11) * 2.0
    return ((m10 - m01) / d, (m02 + m20) / d, (m12 + m21) / d, 0.25 * d)


class QuadDynamics(Sealed):
    """voxelsim's QuadDynamics: controller state + rigid-body state (see module docstring)."""

    __slots__ = ("_params", "_s")
    # _s holds the controller and rigid-body state as one tuple (unpacked once per step):
    _FIELDS = ("qw", "qx", "qy", "qz",            # body orientation (w, x, y, z)
               "wx", "wy", "wz",                  # body angular velocity
               "vix", "viy", "viz",               # velocity-error integral
               "lvx", "lvy", "lvz",               # last velocity error
               "rix", "riy", "riz",               # rate-error integral
               "lex", "ley", "lez",               # last rate error
               "dfx", "dfy", "dfz",               # filtered rate-error derivative
               "ltx", "lty", "ltz",               # last torque (slew limit)
               "fsx", "fsy", "fsz",               # filtered body-rate set-point
               "sat_z", "yaw_sp", "yaw_rate_cmd", "yaw_init", "rate_blend", "last_idle")

    def __init__(self, params):
        self._params = to_instance(params, QuadParams, "params")
        self._s = (1.0, 0.0, 0.0, 0.0) + (0.0,) * 24 + (0, 0.0, 0.0, False, 0.0, False)

    def update_agent_dynamics_py(self, agent, env, chaser, delta) -> None:
        if type(agent) is not Agent:
            agent = to_instance(agent, Agent, "agent")
        if type(env) is not EnvState:
            to_instance(env, EnvState, "env")
        if type(chaser) is not ChaseTarget:
            chaser = to_instance(chaser, ChaseTarget, "chaser")
        if type(delta) is not float:
            delta = to_float(delta, "delta")
        self._step(agent, chaser, delta)

    # The step is one long function on local floats: attribute and tuple traffic is what
    # costs in CPython, so state is unpacked once and packed once.
    def _step(self, agent, chaser, delta) -> None:  # noqa: C901 - mirrors voxelsim's flow
        P = self._params
        (qw, qx, qy, qz, wx, wy, wz, vix, viy, viz, lvx, lvy, lvz, rix, riy, riz,
         lex, ley, lez, dfx, dfy, dfz, ltx, lty, ltz, fsx, fsy, fsz,
         sat_z, yaw_sp, yaw_rate_cmd, yaw_init, rate_blend, last_idle) = self._s

        # 1. progress
        progress = chaser._progress
        kind = progress[0]
        idle = kind != PROGRESS_TO
        if kind == PROGRESS_TO:
            state = agent._state
            if type(state) is Action:
                try:
                    state._update_progress(progress[1], progress[2])
                except ActionError:
                    pass  # voxelsim ignores the Result of update_progress
            target_blend = 1.0
        else:
            if kind == COMPLETE:
                agent._state = progress[1]
            target_blend = 0.0

        alpha = math.exp(-delta / 0.6)
        rate_blend = rate_blend * alpha + target_blend * (1.0 - alpha)
        hov, mov = P._rate_params, P._moving_rate_params
        b = rate_blend

        px, py, pz = agent._pos
        vx, vy, vz = agent._vel

        if idle and not last_idle:
            vix = viy = viz = 0.0
            rix = riy = riz = 0.0
            dfx = dfy = dfz = 0.0
            fsx = fsy = fsz = 0.0
            ltx = lty = ltz = 0.0
        last_idle = idle

        # 2. acceleration set-point
        if idle:
            ax, ay, az = -1.2 * vx, -1.2 * vy, -1.8 * vz
        else:
            pp = P._moving_pos_params
            tpx, tpy, tpz = chaser._pos
            tvx, tvy, tvz = chaser._vel
            tax, tay, taz = chaser._acc
            kpx, kpy, kpz = pp.pos_p
            ex = tvx + kpx * (tpx - px) - vx
            ey = tvy + kpy * (tpy - py) - vy
            ez = tvz + kpz * (tpz - pz) - vz
            if abs(ex) < 0.05:
                ex = 0.0
            if abs(ey) < 0.05:
                ey = 0.0
            if abs(ez) < 0.05:
                ez = 0.0
            ilx, ily, ilz = pp.i_limit
            vix = _clamp(vix + ex * delta, -ilx, ilx)
            viy = _clamp(viy + ey * delta, -ily, ily)
            viz = _clamp(viz + ez * delta, -ilz, ilz)
            if delta > 0.0:
                ddx, ddy, ddz = (ex - lvx) / delta, (ey - lvy) / delta, (ez - lvz) / delta
            else:
                ddx = ddy = ddz = 0.0
            gpx, gpy, gpz = pp.vel_p
            gix, giy, giz = pp.vel_i
            gdx, gdy, gdz = pp.vel_d
            ax = gpx * ex + gix * vix + gdx * ddx + tax
            ay = gpy * ey + giy * viy + gdy * ddy + tay
            az = gpz * ez + giz * viz + gdz * ddz + taz
            lvx, lvy, lvz = ex, ey, ez
            saturated = False
            if az > pp.acc_up_max:
                az = pp.acc_up_max
                saturated = True
            if az < -pp.acc_down_max:
                az = -pp.acc_down_max
                saturated = True
            axy = math.sqrt(ax * ax + ay * ay)
            if axy > pp.acc_hor_max:
                scale = pp.acc_hor_max / axy
                ax *= scale
                ay *= scale
                saturated = True
            if saturated:
                vix -= ex * delta
                viy -= ey * delta
                viz -= ez * delta

        # 3. thrust and desired body z axis
        gravity = P._gravity
        mass = P._mass
        az += gravity
        a_norm = math.sqrt(ax * ax + ay * ay + az * az)
        hover = mass * gravity
        thrust = _clamp(mass * a_norm, P._thrust_min * hover, P._thrust_max * hover)
        if a_norm > 1e-6:
            zbx, zby, zbz = ax / a_norm, ay / a_norm, az / a_norm
        else:
            zbx, zby, zbz = 0.0, 0.0, 1.0

        # current yaw from the body x axis
        r00 = 1.0 - 2.0 * (qy * qy + qz * qz)
        r10 = 2.0 * (qx * qy + qw * qz)
        yaw_current = math.atan2(r10, r00)
        if not yaw_init:
            yaw_sp = yaw_current
            yaw_rate_cmd = 0.0
            yaw_init = True
        e_yaw = _wrap(chaser._yaw - yaw_sp)
        e_abs = abs(e_yaw)
        scale = min(e_abs / 0.4, 1.0) ** 2
        max_rate = 1.0 * (0.5 + 0.5 * scale)
        yaw_rate_des = _clamp(2.0 * scale * e_yaw - 0.8 * wz, -max_rate, max_rate)
        max_delta_rate = 5.0 * delta
        yaw_rate_cmd += _clamp(yaw_rate_des - yaw_rate_cmd, -max_delta_rate, max_delta_rate)
        if e_abs < 0.03 and abs(wz) < 0.05:
            yaw_rate_cmd = 0.0
            yaw_sp = yaw_current
        else:
            yaw_sp = _wrap(yaw_sp + yaw_rate_cmd * delta)
        yaw_cmd = yaw_current if idle else yaw_sp

        # desired rotation: columns x_b, y_b, z_b
        cx, cy = math.cos(yaw_cmd), math.sin(yaw_cmd)
        ybx, yby, ybz = -zbz * cy, zbz * cx, zbx * cy - zby * cx  # z_b × (cx, cy, 0)
        n = math.sqrt(ybx * ybx + yby * yby + ybz * ybz)
        ybx, yby, ybz = _div(ybx, n), _div(yby, n), _div(ybz, n)
        xbx = yby * zbz - ybz * zby
        xby = ybz * zbx - ybx * zbz
        xbz = ybx * zby - yby * zbx
        cw, cx_, cy_, cz_ = quat_from_matrix(xbx, ybx, zbx, xby, yby, zby, xbz, ybz, zbz)
        # error rotation q_cmd * q_act^-1 and its rotation vector
        ew = cw * qw + cx_ * qx + cy_ * qy + cz_ * qz
        evx = -cw * qx + cx_ * qw - cy_ * qz + cz_ * qy
        evy = -cw * qy + cx_ * qz + cy_ * qw - cz_ * qx
        evz = -cw * qz - cx_ * qy + cy_ * qx + cz_ * qw
        if ew < 0.0:
            evx, evy, evz = -evx, -evy, -evz
        vn = math.sqrt(evx * evx + evy * evy + evz * evz)
        aw = abs(ew)
        if vn > 0.0 and aw < 1.0:
            k = 2.0 * math.acos(aw) / vn
            evx, evy, evz = evx * k, evy * k, evz * k
        else:
            evx = evy = evz = 0.0
        apx, apy, apz = P._att_p
        rsx, rsy, rsz = apx * evx, apy * evy, apz * evz + (0.0 if idle else yaw_rate_cmd)
        rsz = _clamp(rsz, -1.0, 1.0)
        if idle:
            if abs(rsx) < 0.2:
                rsx = 0.0
            if abs(rsy) < 0.2:
                rsy = 0.0
            if abs(rsz) < 0.2:
                rsz = 0.0
            rsx, rsy, rsz = rsx * 0.8, rsy * 0.8, rsz * 0.8
        limit = 3.5 if idle else 4.5
        rn = math.sqrt(rsx * rsx + rsy * rsy + rsz * rsz)
        if rn > limit:
            k = limit / rn
            rsx, rsy, rsz = rsx * k, rsy * k, rsz * k
        tau_sp = 1.0 / (_TWO_PI * 10.0)
        a_sp = tau_sp / (tau_sp + delta)
        fsx = fsx * a_sp + rsx * (1.0 - a_sp)
        fsy = fsy * a_sp + rsy * (1.0 - a_sp)
        fsz = fsz * a_sp + rsz * (1.0 - a_sp)

        # 4. rate PID (gains blended between hover and moving)
        (hkpx, hkpy, hkpz, hkix, hkiy, hkiz, hkdx, hkdy, hkdz, hmtx, hmty, hmtz,
         hmix, hmiy, hmiz, hlpf) = hov.flat
        (mkpx, mkpy, mkpz, mkix, mkiy, mkiz, mkdx, mkdy, mkdz, mmtx, mmty, mmtz,
         mmix, mmiy, mmiz, mlpf) = mov.flat
        kpx, kpy, kpz = hkpx + (mkpx - hkpx) * b, hkpy + (mkpy - hkpy) * b, hkpz + (mkpz - hkpz) * b
        kix, kiy, kiz = hkix + (mkix - hkix) * b, hkiy + (mkiy - hkiy) * b, hkiz + (mkiz - hkiz) * b
        kdx, kdy, kdz = hkdx + (mkdx - hkdx) * b, hkdy + (mkdy - hkdy) * b, hkdz + (mkdz - hkdz) * b
        mtx, mty, mtz = hmtx + (mmtx - hmtx) * b, hmty + (mmty - hmty) * b, hmtz + (mmtz - hmtz) * b
        mix, miy, miz = hmix + (mmix - hmix) * b, hmiy + (mmiy - hmiy) * b, hmiz + (mmiz - hmiz) * b
        d_lpf = hlpf + (mlpf - hlpf) * b

        erx, ery, erz = fsx - wx, fsy - wy, fsz - wz
        inv_dt = _div(1.0, delta)
        tau = 1.0 / (_TWO_PI * max(d_lpf, 0.1))
        a_d = tau / (tau + delta)
        dfx = dfx * a_d + (erx - lex) * inv_dt * (1.0 - a_d)
        dfy = dfy * a_d + (ery - ley) * inv_dt * (1.0 - a_d)
        dfz = dfz * a_d + (erz - lez) * inv_dt * (1.0 - a_d)
        ptx, pty, ptz = kpx * erx, kpy * ery, kpz * erz
        dtx, dty, dtz = kdx * dfx, kdy * dfy, kdz * dfz
        icx, icy, icz = rix + erx * delta, riy + ery * delta, riz + erz * delta
        rcx = ptx + kix * icx + dtx
        rcy = pty + kiy * icy + dty
        rcz = ptz + kiz * icz + dtz
        if not ((rcx > mtx and erx > 0.0) or (rcx < -mtx and erx < 0.0)):
            rix = icx
        if not ((rcy > mty and ery > 0.0) or (rcy < -mty and ery < 0.0)):
            riy = icy
        if not ((rcz > mtz and erz > 0.0) or (rcz < -mtz and erz < 0.0)):
            riz = icz
        rix = -mix if rix < -mix else (mix if rix > mix else rix)
        riy = -miy if riy < -miy else (miy if riy > miy else riy)
        riz = -miz if riz < -miz else (miz if riz > miz else riz)
        if idle:
            pdx, pdy, pdz = 0.02, 0.02, 0.03
        else:
            pdx, pdy, pdz = 0.05, 0.05, 0.07
        tqx = ptx + kix * rix + dtx - pdx * wx
        tqx = -mtx if tqx < -mtx else (mtx if tqx > mtx else tqx)
        tqy = pty + kiy * riy + dty - pdy * wy
        tqy = -mty if tqy < -mty else (mty if tqy > mty else tqy)
        tqz = ptz + kiz * riz + dtz - pdz * wz
        tqz = -mtz if tqz < -mtz else (mtz if tqz > mtz else tqz)
        if abs(tqz) >= mtz * 0.999:
            sat_z += 1
        else:
            sat_z = 0
        if sat_z >= 5:
            riz *= 0.98
        if idle and math.sqrt(wx * wx + wy * wy + wz * wz) < 0.3:
            rix, riy, riz = rix * 0.9, riy * 0.9, riz * 0.9
            vix, viy, viz = vix * 0.9, viy * 0.9, viz * 0.9
        sx, sz = 6.0 * delta, 5.0 * delta
        d = tqx - ltx
        tqx = ltx + (-sx if d < -sx else (sx if d > sx else d))
        d = tqy - lty
        tqy = lty + (-sx if d < -sx else (sx if d > sx else d))
        d = tqz - ltz
        tqz = ltz + (-sz if d < -sz else (sz if d > sz else d))
        ltx, lty, ltz = tqx, tqy, tqz
        if not idle:
            decay = math.exp(-delta / 1.2)
            rix, riy, riz = rix * decay, riy * decay, riz * decay
            dfx, dfy, dfz = dfx * decay, dfy * decay, dfz * decay
            vix, viy, viz = vix * decay, viy * decay, viz * decay
            yaw_rate_cmd *= decay
        lex, ley, lez = erx, ery, erz

        # 5. rigid body: one RK4 step
        (px, py, pz, vx, vy, vz, qw, qx, qy, qz, wx, wy, wz) = _rk4(
            P, thrust, tqx, tqy, tqz, delta, px, py, pz, vx, vy, vz, qw, qx, qy, qz, wx, wy, wz)

        agent._pos = (px, py, pz)
        agent._vel = (vx, vy, vz)
        agent._attitude = (qw, qx, qy, qz)
        self._s = (qw, qx, qy, qz, wx, wy, wz, vix, viy, viz, lvx, lvy, lvz, rix, riy, riz,
                   lex, ley, lez, dfx, dfy, dfz, ltx, lty, ltz, fsx, fsy, fsz,
                   sat_z, yaw_sp, yaw_rate_cmd, yaw_init, rate_blend, last_idle)


def _rk4(P, thrust, tx, ty, tz, h, px, py, pz, vx, vy, vz, qw, qx, qy, qz, wx, wy, wz):
    """One RK4 step of the rigid body (peng_quad's model) with constant thrust and torque.

    The four derivative evaluations are written out: a nested function called four times
    per step cost a third of the step. Stage ``i``'s derivatives are ``ki*``; each quaternion
    is normalised before use, as peng_quad does."""
    m = P._mass
    mg = m * P._gravity
    c = P._drag_coefficient
    ix, iy, iz = P._inertia
    inv_m = 1.0 / m
    hh = 0.5 * h
    n = math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
    nw, nx, ny, nz = qw / n, qx / n, qy / n, qz / n
    cd = c * math.sqrt(vx * vx + vy * vy + vz * vz)
    k1vx = (thrust * 2.0 * (nx * nz + nw * ny) - cd * vx) * inv_m
    k1vy = (thrust * 2.0 * (ny * nz - nw * nx) - cd * vy) * inv_m
    k1vz = (thrust * (1.0 - 2.0 * (nx * nx + ny * ny)) - mg - cd * vz) * inv_m
    k1qw = 0.5 * (-nx * wx - ny * wy - nz * wz)
    k1qx = 0.5 * (nw * wx + ny * wz - nz * wy)
    k1qy = 0.5 * (nw * wy + nz * wx - nx * wz)
    k1qz = 0.5 * (nw * wz + nx * wy - ny * wx)
    k1wx = (tx - (wy * iz * wz - wz * iy * wy)) / ix
    k1wy = (ty - (wz * ix * wx - wx * iz * wz)) / iy
    k1wz = (tz - (wx * iy * wy - wy * ix * wx)) / iz
    vx2, vy2, vz2, qw2, qx2, qy2, qz2, wx2, wy2, wz2 = (
        vx + hh * k1vx, vy + hh * k1vy, vz + hh * k1vz,
        qw + hh * k1qw, qx + hh * k1qx, qy + hh * k1qy, qz + hh * k1qz,
        wx + hh * k1wx, wy + hh * k1wy, wz + hh * k1wz)
    n = math.sqrt(qw2 * qw2 + qx2 * qx2 + qy2 * qy2 + qz2 * qz2)
    nw, nx, ny, nz = qw2 / n, qx2 / n, qy2 / n, qz2 / n
    cd = c * math.sqrt(vx2 * vx2 + vy2 * vy2 + vz2 * vz2)
    k2vx = (thrust * 2.0 * (nx * nz + nw * ny) - cd * vx2) * inv_m
    k2vy = (thrust * 2.0 * (ny * nz - nw * nx) - cd * vy2) * inv_m
    k2vz = (thrust * (1.0 - 2.0 * (nx * nx + ny * ny)) - mg - cd * vz2) * inv_m
    k2qw = 0.5 * (-nx * wx2 - ny * wy2 - nz * wz2)
    k2qx = 0.5 * (nw * wx2 + ny * wz2 - nz * wy2)
    k2qy = 0.5 * (nw * wy2 + nz * wx2 - nx * wz2)
    k2qz = 0.5 * (nw * wz2 + nx * wy2 - ny * wx2)
    k2wx = (tx - (wy2 * iz * wz2 - wz2 * iy * wy2)) / ix
    k2wy = (ty - (wz2 * ix * wx2 - wx2 * iz * wz2)) / iy
    k2wz = (tz - (wx2 * iy * wy2 - wy2 * ix * wx2)) / iz
    vx3, vy3, vz3, qw3, qx3, qy3, qz3, wx3, wy3, wz3 = (
        vx + hh * k2vx, vy + hh * k2vy, vz + hh * k2vz,
        qw + hh * k2qw, qx + hh * k2qx, qy + hh * k2qy, qz + hh * k2qz,
        wx + hh * k2wx, wy + hh * k2wy, wz + hh * k2wz)
    n = math.sqrt(qw3 * qw3 + qx3 * qx3 + qy3 * qy3 + qz3 * qz3)
    nw, nx, ny, nz = qw3 / n, qx3 / n, qy3 / n, qz3 / n
    cd = c * math.sqrt(vx3 * vx3 + vy3 * vy3 + vz3 * vz3)
    k3vx = (thrust * 2.0 * (nx * nz + nw * ny) - cd * vx3) * inv_m
    k3vy = (thrust * 2.0 * (ny * nz - nw * nx) - cd * vy3) * inv_m
    k3vz = (thrust * (1.0 - 2.0 * (nx * nx + ny * ny)) - mg - cd * vz3) * inv_m
    k3qw = 0.5 * (-nx * wx3 - ny * wy3 - nz * wz3)
    k3qx = 0.5 * (nw * wx3 + ny * wz3 - nz * wy3)
    k3qy = 0.5 * (nw * wy3 + nz * wx3 - nx * wz3)
    k3qz = 0.5 * (nw * wz3 + nx * wy3 - ny * wx3)
    k3wx = (tx - (wy3 * iz * wz3 - wz3 * iy * wy3)) / ix
    k3wy = (ty - (wz3 * ix * wx3 - wx3 * iz * wz3)) / iy
    k3wz = (tz - (wx3 * iy * wy3 - wy3 * ix * wx3)) / iz
    vx4, vy4, vz4, qw4, qx4, qy4, qz4, wx4, wy4, wz4 = (
        vx + h * k3vx, vy + h * k3vy, vz + h * k3vz,
        qw + h * k3qw, qx + h * k3qx, qy + h * k3qy, qz + h * k3qz,
        wx + h * k3wx, wy + h * k3wy, wz + h * k3wz)
    n = math.sqrt(qw4 * qw4 + qx4 * qx4 + qy4 * qy4 + qz4 * qz4)
    nw, nx, ny, nz = qw4 / n, qx4 / n, qy4 / n, qz4 / n
    cd = c * math.sqrt(vx4 * vx4 + vy4 * vy4 + vz4 * vz4)
    k4vx = (thrust * 2.0 * (nx * nz + nw * ny) - cd * vx4) * inv_m
    k4vy = (thrust * 2.0 * (ny * nz - nw * nx) - cd * vy4) * inv_m
    k4vz = (thrust * (1.0 - 2.0 * (nx * nx + ny * ny)) - mg - cd * vz4) * inv_m
    k4qw = 0.5 * (-nx * wx4 - ny * wy4 - nz * wz4)
    k4qx = 0.5 * (nw * wx4 + ny * wz4 - nz * wy4)
    k4qy = 0.5 * (nw * wy4 + nz * wx4 - nx * wz4)
    k4qz = 0.5 * (nw * wz4 + nx * wy4 - ny * wx4)
    k4wx = (tx - (wy4 * iz * wz4 - wz4 * iy * wy4)) / ix
    k4wy = (ty - (wz4 * ix * wx4 - wx4 * iz * wz4)) / iy
    k4wz = (tz - (wx4 * iy * wy4 - wy4 * ix * wx4)) / iz
    h6 = h / 6.0
    px += h6 * (vx + 2.0 * vx2 + 2.0 * vx3 + vx4)
    py += h6 * (vy + 2.0 * vy2 + 2.0 * vy3 + vy4)
    pz += h6 * (vz + 2.0 * vz2 + 2.0 * vz3 + vz4)
    vx = vx + h6 * (k1vx + 2.0 * k2vx + 2.0 * k3vx + k4vx)
    vy = vy + h6 * (k1vy + 2.0 * k2vy + 2.0 * k3vy + k4vy)
    vz = vz + h6 * (k1vz + 2.0 * k2vz + 2.0 * k3vz + k4vz)
    qw = qw + h6 * (k1qw + 2.0 * k2qw + 2.0 * k3qw + k4qw)
    qx = qx + h6 * (k1qx + 2.0 * k2qx + 2.0 * k3qx + k4qx)
    qy = qy + h6 * (k1qy + 2.0 * k2qy + 2.0 * k3qy + k4qy)
    qz = qz + h6 * (k1qz + 2.0 * k2qz + 2.0 * k3qz + k4qz)
    wx = wx + h6 * (k1wx + 2.0 * k2wx + 2.0 * k3wx + k4wx)
    wy = wy + h6 * (k1wy + 2.0 * k2wy + 2.0 * k3wy + k4wy)
    wz = wz + h6 * (k1wz + 2.0 * k2wz + 2.0 * k3wz + k4wz)
    n = math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
    return (px, py, pz, vx, vy, vz, qw / n, qx / n, qy / n, qz / n, wx, wy, wz)
