"""MoveDir and ActionIntent: what a policy asks the agent to do (voxelsim/src/agent/mod.rs).

Axes are voxelsim's (NED-like): Forward/Back is ±x, Right/Left is ±y, Down/Up is ±z, so a
*negative* z is up. ``MoveDir.None`` is a Python keyword; reach it as ``MoveDir.none()``.
"""

from __future__ import annotations

from bgen.sim.embedded.convert import PanicException, to_float, to_int, to_list_of
from bgen.sim.embedded.convert import Sealed

_DIRECTIONS = (
    # (name, code, unit vector or None when undecided)
    ("None", 0, (0, 0, 0)),
    ("Forward", 1, (1, 0, 0)),
    ("Back", 2, (-1, 0, 0)),
    ("Left", 3, (0, -1, 0)),
    ("Right", 4, (0, 1, 0)),
    ("Up", 5, (0, 0, -1)),
    ("Down", 6, (0, 0, 1)),
    ("Undecided", 7, None),
)
_OPPOSITE = {"Up": "Down", "Down": "Up", "Left": "Right", "Right": "Left",
             "Forward": "Back", "Back": "Forward", "None": "None", "Undecided": "Undecided"}


class MoveDir(Sealed):
    """One unit move; a PyO3 simple enum with variants as class attributes (``MoveDir.Up``)."""

    __slots__ = ("_name", "_code", "_vector")

    def __init__(self, *args, **kwargs):
        raise TypeError("No constructor defined for MoveDir")

    @classmethod
    def _make(cls, name: str, code: int, vector):
        self = object.__new__(cls)
        self._name, self._code, self._vector = name, code, vector
        return self

    # --- PyO3 simple-enum behaviour -------------------------------------------------------
    def __repr__(self) -> str:
        return f"MoveDir.{self._name}"

    def __int__(self) -> int:
        return self._code

    def __index__(self) -> int:
        return self._code

    def __eq__(self, other) -> bool:
        return isinstance(other, MoveDir) and other._code == self._code

    def __hash__(self) -> int:
        return hash(("MoveDir", self._code))

    def __reduce__(self):
        return (MoveDir.from_code_py, (self._code,))

    # --- bound methods (voxelsim/src/py.rs) ----------------------------------------------
    @staticmethod
    def from_code_py(code) -> "MoveDir":
        code = to_int(code, "code", "i32")
        if not 0 <= code < len(_DIRECTIONS):
            raise Exception(
                f"Failed to parse code: No discriminant in enum `MoveDir` matches the value `{code}`")
        return _BY_CODE[code]

    @classmethod
    def none(cls) -> "MoveDir":
        return _BY_CODE[0]

    @classmethod
    def forward(cls) -> "MoveDir":
        return _BY_CODE[1]

    @classmethod
    def back(cls) -> "MoveDir":
        return _BY_CODE[2]

    @classmethod
    def left(cls) -> "MoveDir":
        return _BY_CODE[3]

    @classmethod
    def right(cls) -> "MoveDir":
        return _BY_CODE[4]

    @classmethod
    def up(cls) -> "MoveDir":
        return _BY_CODE[5]

    @classmethod
    def down(cls) -> "MoveDir":
        return _BY_CODE[6]

    @classmethod
    def undecided(cls) -> "MoveDir":
        return _BY_CODE[7]

    def to_string(self) -> str:
        return self._name

    def get_direction_vector(self):
        return self._vector

    def is_movement(self) -> bool:
        return self._name not in ("None", "Undecided")

    def is_vertical(self) -> bool:
        return self._name in ("Up", "Down")

    def is_horizontal(self) -> bool:
        return self._name in ("Left", "Right", "Forward", "Back")

    def opposite(self) -> "MoveDir":
        return getattr(MoveDir, _OPPOSITE[self._name])


_BY_CODE = [MoveDir._make(name, code, vector) for name, code, vector in _DIRECTIONS]
for _variant in _BY_CODE:
    type.__setattr__(MoveDir, _variant._name, _variant)  # sealed type: bypass on purpose
del _variant


class ActionIntent(Sealed):
    """A move sequence flown at ``urgency`` (speed scale, must be > 0) facing ``yaw`` radians.

    ``ActionIntent(urgency, yaw, move_sequence)`` — three arguments, in this order. An urgency
    that is not > 0 (including NaN) trips voxelsim's ``assert!(urgency > 0.0)``: a Rust panic,
    raised as ``PanicException``, which derives from ``BaseException``.
    """

    __slots__ = ("_urgency", "_yaw", "_moves")

    def __init__(self, urgency, yaw, move_sequence):
        urgency = to_float(urgency, "urgency")
        yaw = to_float(yaw, "yaw")
        moves = to_list_of(move_sequence, MoveDir, "move_sequence")
        if not urgency > 0.0:
            raise PanicException("assertion failed: urgency > 0.0")
        self._urgency, self._yaw, self._moves = urgency, yaw, tuple(moves)

    @classmethod
    def _trusted(cls, urgency: float, yaw: float, moves) -> "ActionIntent":
        """Build without re-validating (internal use: planner, action queues, decoding)."""
        self = object.__new__(cls)
        self._urgency, self._yaw, self._moves = float(urgency), float(yaw), tuple(moves)
        return self

    def get_move_sequence(self) -> list:
        return list(self._moves)

    def len(self) -> int:
        return len(self._moves)

    def __repr__(self) -> str:
        return f"ActionIntent(urgency={self._urgency}, yaw={self._yaw}, moves={list(self._moves)})"

    # --- internal helpers used by Action / Trajectory -------------------------------------
    def _relative_end(self) -> tuple[int, int, int]:
        x = y = z = 0
        for move in self._moves:
            if move._vector is not None:
                x += move._vector[0]
                y += move._vector[1]
                z += move._vector[2]
        return (x, y, z)
