"""Camera types: projection, orientation relative to the drone, and a posed view.

Facts from voxelsim (``voxelsim/src/agent/viewport.rs``, ``py.rs``):

* ``CameraProjection(aspect, fov_vertical, max_distance, near_distance)``; its four fields are
  readable and writable attributes (``get_all, set_all``); ``default_py()`` is
  ``(1.4, 0.8, 50.0, 0.5)`` (``fov_vertical`` in radians).
* ``CameraOrientation.vertical_tilt_py(tilt)`` is a rotation by ``tilt`` radians about
  Forward × Up = (1, 0, 0) × (0, 0, -1) = (0, 1, 0); it has no other Python API.
* ``CameraView`` is what ``Agent.camera_view_py(orientation)`` returns: the agent position and the
  rotation ``agent.attitude * orientation`` applied to the base axes Forward (1, 0, 0),
  Up (0, 0, -1) and Right (0, 1, 0). voxelsim exposes no attribute of it to Python.

Internal fields, for the vision ray caster and the wire codec (tuples of Python floats; a
quaternion is always ``(w, x, y, z)``):

    CameraOrientation._quat     rotation of the camera relative to the drone body
    CameraView._pos             eye position (world, voxel units; z is down, as in voxelsim)
    CameraView._quat            world rotation of the camera (attitude * orientation)
    CameraView._forward         unit vector the camera looks along
    CameraView._up              unit vector of the image's up direction
    CameraView._right           unit vector of the image's right direction
"""

from __future__ import annotations

import math

from bgen.sim.embedded.convert import to_float
from bgen.sim.embedded.convert import Sealed

# Base axes of voxelsim's MoveDir vectors: Forward +x, Right +y, Up -z.
BASE_FORWARD = (1.0, 0.0, 0.0)
BASE_RIGHT = (0.0, 1.0, 0.0)
BASE_UP = (0.0, 0.0, -1.0)


def quat_mul(a, b):
    """Hamilton product of two ``(w, x, y, z)`` quaternions."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw)


def quat_rotate(q, v):
    """Rotate the 3-vector ``v`` by the unit quaternion ``q = (w, x, y, z)``."""
    w, x, y, z = q
    vx, vy, vz = v
    # t = 2 * (q.xyz × v); v' = v + w t + q.xyz × t
    tx = 2.0 * (y * vz - z * vy)
    ty = 2.0 * (z * vx - x * vz)
    tz = 2.0 * (x * vy - y * vx)
    return (vx + w * tx + (y * tz - z * ty),
            vy + w * ty + (z * tx - x * tz),
            vz + w * tz + (x * ty - y * tx))


class CameraProjection(Sealed):
    """Pinhole projection parameters; all four fields are plain read/write float attributes."""

    __slots__ = ("_aspect", "_fov_vertical", "_max_distance", "_near_distance")

    def __init__(self, aspect, fov_vertical, max_distance, near_distance):
        self._aspect = to_float(aspect, "aspect")
        self._fov_vertical = to_float(fov_vertical, "fov_vertical")
        self._max_distance = to_float(max_distance, "max_distance")
        self._near_distance = to_float(near_distance, "near_distance")

    @staticmethod
    def default_py() -> "CameraProjection":
        return CameraProjection(1.4, 0.8, 50.0, 0.5)

    def _get_aspect(self):
        return self._aspect

    def _set_aspect(self, value):
        self._aspect = to_float(value)

    def _get_fov(self):
        return self._fov_vertical

    def _set_fov(self, value):
        self._fov_vertical = to_float(value)

    def _get_max(self):
        return self._max_distance

    def _set_max(self, value):
        self._max_distance = to_float(value)

    def _get_near(self):
        return self._near_distance

    def _set_near(self, value):
        self._near_distance = to_float(value)

    aspect = property(_get_aspect, _set_aspect, doc="width / height")
    fov_vertical = property(_get_fov, _set_fov, doc="vertical field of view, radians")
    max_distance = property(_get_max, _set_max, doc="far plane distance")
    near_distance = property(_get_near, _set_near, doc="near plane distance")


class CameraOrientation(Sealed):
    """The camera's rotation relative to the drone body (no constructor, as in voxelsim)."""

    __slots__ = ("_quat",)

    def __init__(self, *args, **kwargs):
        raise TypeError("No constructor defined for CameraOrientation")

    @classmethod
    def _from_quat(cls, quat) -> "CameraOrientation":
        self = object.__new__(cls)
        self._quat = tuple(float(c) for c in quat)
        return self

    @staticmethod
    def vertical_tilt_py(tilt) -> "CameraOrientation":
        """Tilt by ``tilt`` radians about the body's right axis (0, 1, 0); negative looks down."""
        tilt = to_float(tilt, "tilt")
        half = 0.5 * tilt
        return CameraOrientation._from_quat((math.cos(half), 0.0, math.sin(half), 0.0))


class CameraView(Sealed):
    """A posed camera: eye position and the world forward/up/right unit vectors."""

    __slots__ = ("_pos", "_quat", "_forward", "_up", "_right")

    def __init__(self, *args, **kwargs):
        raise TypeError("No constructor defined for CameraView")

    @classmethod
    def _from_pos_quat(cls, pos, quat) -> "CameraView":
        """voxelsim's ``CameraView::from_pos_quat``: rotate the base axes by ``quat``."""
        self = object.__new__(cls)
        self._pos = (float(pos[0]), float(pos[1]), float(pos[2]))
        self._quat = tuple(quat)
        self._forward = quat_rotate(quat, BASE_FORWARD)
        self._up = quat_rotate(quat, BASE_UP)
        self._right = quat_rotate(quat, BASE_RIGHT)
        return self
