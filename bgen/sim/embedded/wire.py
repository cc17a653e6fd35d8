"""bincode 2 codec of the renderer's wire types, byte for byte as voxelsim sends them.

voxelsim's ``RendererClient`` sends ``bincode::serde::encode_to_vec(value,
bincode::config::standard())`` of serde-derived Rust types, framed ``[u32 LE length][payload]``.
This module is sans-I/O (bytes in, plain data out, and back); ``network.py`` owns the sockets.

Primitives (``config::standard()``: little-endian, variable-width integers)
-------------------------------------------------------------------------------
``u16/u32/u64/usize``  varint: ``v < 251`` one byte; else a tag byte then the value LE:
                       251 = u16 follows, 252 = u32, 253 = u64, 254 = u128.
``i32/i64``            zig-zag (0, -1, 1, -2 … → 0, 1, 2, 3 …) then the unsigned varint.
``u8``                 one raw byte (never a varint); ``bool`` likewise (0/1).
``f64``                8 bytes IEEE-754 little-endian.
``Option<T>``          one byte 0 (None) or 1 then T.
enum variant           its index as a u32 varint, then the variant's fields.
``Vec``/``VecDeque``/map/``str``  length as a u64 varint, then the items (map: key, value …).
struct, tuple, ``[T; N]``  the fields in declaration order, no length, no names.
newtype struct         exactly its single field.

Serde forms of the types involved (voxelsim's crates: nalgebra 0.33, bitflags 2, dashmap 6)
-------------------------------------------------------------------------------
``Vector3<T>``         nalgebra serializes a matrix as its ``ArrayStorage`` with
                       ``serialize_tuple(R * C)``: three T, no length (x, y, z).
``UnitQuaternion<f64>``  ``Unit`` is transparent, ``Quaternion`` serializes its ``coords``
                       vector: four f64 in the order i, j, k, w (identity = 0, 0, 0, 1).
``Cell``               bitflags 2 with serde: a string only for human-readable formats;
                       bincode's serializer is not human-readable, so the bits: a u32 varint
                       (FILLED = 16 is one byte ``10``; INTEREST = 256 is ``fb 00 01``).
``DashMap<K, V>``      ``serialize_map(Some(len))``: like a HashMap (iteration order is
                       unspecified; the renderer does not depend on it).

Payloads
--------
``VoxelGrid``  (world port 8080; ``virtual_world`` of a PovData)::

    cells: DashMap<Vector3<i32>, Cell>
      = len: u64 varint, then per cell  x: i32, y: i32, z: i32, bits: u32   (all varints)

``HashMap<usize, Agent>``  (agent port 8081 and every pov agent port 9090+i)::

    len: u64 varint, then per agent  key: usize, Agent
    Agent    = pos: 3×f64, vel: 3×f64, thrust: 3×f64, rate: 3×f64,
               attitude: 4×f64 (i, j, k, w), id: usize, state: AgentState
    AgentState = 0 Action(Action) | 1 Hold { coord: 3×i32, yaw: f64 }
    Action   = intent_queue: VecDeque<ActionIntent>, trajectory: Trajectory, origin: 3×i32
    ActionIntent = move_sequence: Vec<MoveDir> (each a u32 variant tag, None=0 … Undecided=7),
               urgency: f64, yaw: f64
    Trajectory (hand-written Serialize: the SplineData struct)
             = degree: usize, knots: Vec<f64>, ctrl_pts: Vec<[f64; 3]>,
               urgencies: Vec<(f64, f64)>, yaw_seq: Vec<(f64, f64)>, waypoints: Vec<f64>,
               progress: f64, length: f64

``PovData``  (pov port 8090+i)::

    virtual_world: VoxelGrid, agent_id: usize,
    proj: CameraProjection = aspect, fov_vertical, max_distance, near_distance (4×f64),
    orientation: CameraOrientation = quat: 4×f64 (i, j, k, w)

Worlds are encoded and decoded with numpy (zig-zag, byte-length classes, and for decoding a
pointer-doubling walk over the varint run), so a terrain of hundreds of thousands of cells
takes milliseconds; agents and PovData headers are small and go through ``Writer``/``Reader``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, fields, is_dataclass

import numpy as np

__all__ = [
    "WireError", "Writer", "Reader", "FrameDecoder", "frame",
    "WorldData", "IntentData", "SplineData", "ActionData", "HoldData", "AgentData",
    "ProjectionData", "PovData",
    "encode_world", "decode_world", "encode_agents", "decode_agents", "encode_pov",
    "decode_pov", "to_jsonable", "MOVE_DIR_NAMES",
    "world_data", "agent_data", "spline_data", "projection_data", "orientation_quat",
]

MOVE_DIR_NAMES = ("None", "Forward", "Back", "Left", "Right", "Up", "Down", "Undecided")

_U16_TAG, _U32_TAG, _U64_TAG, _U128_TAG = 251, 252, 253, 254
_MAX = {"u16": 0xFFFF, "u32": 0xFFFFFFFF, "u64": 0xFFFFFFFFFFFFFFFF}
_F64 = struct.Struct("<d")
_F64X3 = struct.Struct("<3d")
_F64X4 = struct.Struct("<4d")
_LEN = struct.Struct("<I")


class WireError(ValueError):
    """A payload that is not a valid bincode encoding of the expected type (decoder side)."""


# =========================================================================================
# Scalar primitives
# =========================================================================================

def zigzag(value: int) -> int:
    """Signed → unsigned as bincode does: 0, -1, 1, -2 … → 0, 1, 2, 3 …"""
    return value * 2 if value >= 0 else -value * 2 - 1


def unzigzag(value: int) -> int:
    return value >> 1 if not value & 1 else -((value + 1) >> 1)


def varint(value: int, kind: str = "u64") -> bytes:
    """The bincode varint of an unsigned ``value`` (``kind`` bounds it: u16, u32, u64)."""
    if value < 0 or value > _MAX[kind]:
        raise ValueError(f"{kind} varint: expects 0..{_MAX[kind]}, actual: {value}")
    if value < _U16_TAG:
        return bytes((value,))
    if value <= 0xFFFF:
        return bytes((_U16_TAG,)) + value.to_bytes(2, "little")
    if value <= 0xFFFFFFFF:
        return bytes((_U32_TAG,)) + value.to_bytes(4, "little")
    return bytes((_U64_TAG,)) + value.to_bytes(8, "little")


class Writer:
    """Appends bincode primitives to a growing list of chunks; ``getvalue()`` joins them."""

    __slots__ = ("_chunks",)

    def __init__(self):
        self._chunks: list[bytes] = []

    def getvalue(self) -> bytes:
        return b"".join(self._chunks)

    def raw(self, data: bytes) -> None:
        self._chunks.append(bytes(data))

    def u8(self, value: int) -> None:
        self._chunks.append(bytes((value,)))

    def bool(self, value: bool) -> None:
        self.u8(1 if value else 0)

    def uvar(self, value: int, kind: str = "u64") -> None:
        self._chunks.append(varint(int(value), kind))

    def ivar(self, value: int, kind: str = "i32") -> None:
        value = int(value)
        bits = 32 if kind == "i32" else 64
        if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
            raise ValueError(f"{kind}: expects {-(1 << (bits - 1))}..{(1 << (bits - 1)) - 1}, "
                             f"actual: {value}")
        self._chunks.append(varint(zigzag(value), "u32" if bits == 32 else "u64"))

    def variant(self, index: int) -> None:
        self.uvar(index, "u32")

    def length(self, n: int) -> None:
        self.uvar(n, "u64")

    def f64(self, value: float) -> None:
        self._chunks.append(_F64.pack(float(value)))

    def f64s(self, values) -> None:
        values = [float(v) for v in values]
        self._chunks.append(struct.pack(f"<{len(values)}d", *values))

    def vec3_i32(self, coord) -> None:
        for c in coord:
            self.ivar(c, "i32")

    def string(self, text: str) -> None:
        data = text.encode("utf-8")
        self.length(len(data))
        self.raw(data)

    def option(self, value, write_some) -> None:
        if value is None:
            self.u8(0)
        else:
            self.u8(1)
            write_some(value)


class Reader:
    """Reads bincode primitives from ``data``; errors name the offset and what was expected."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0):
        self.data = bytes(data)
        self.pos = pos

    def _take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise WireError(f"truncated payload: {what} needs {n} bytes at offset {self.pos}, "
                            f"payload has {len(self.data)}")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def u8(self, what: str = "u8") -> int:
        return self._take(1, what)[0]

    def bool(self, what: str = "bool") -> bool:
        at = self.pos
        value = self.u8(what)
        if value > 1:
            raise WireError(f"{what}: expects 0 or 1 at offset {at}, actual: {value}")
        return bool(value)

    def uvar(self, kind: str = "u64", what: str | None = None) -> int:
        what = what or kind
        at = self.pos
        tag = self.u8(what)
        if tag < _U16_TAG:
            return tag
        width = {_U16_TAG: 2, _U32_TAG: 4, _U64_TAG: 8, _U128_TAG: 16}.get(tag)
        if width is None:
            raise WireError(f"{what}: invalid varint tag {tag} at offset {at}")
        value = int.from_bytes(self._take(width, what), "little")
        if value > _MAX[kind]:
            raise WireError(f"{what}: varint at offset {at} holds {value}, "
                            f"out of range for {kind}")
        return value

    def ivar(self, kind: str = "i32", what: str | None = None) -> int:
        return unzigzag(self.uvar("u32" if kind == "i32" else "u64", what or kind))

    def variant(self, what: str = "enum variant") -> int:
        return self.uvar("u32", what)

    def length(self, what: str = "length") -> int:
        at = self.pos
        n = self.uvar("u64", what)
        if n > len(self.data) - self.pos:
            # Every item takes at least one byte: a longer length cannot be honest.
            raise WireError(f"{what}: length {n} at offset {at} exceeds the "
                            f"{len(self.data) - self.pos} bytes left")
        return n

    def f64(self, what: str = "f64") -> float:
        return _F64.unpack(self._take(8, what))[0]

    def f64s(self, n: int, what: str = "f64") -> tuple:
        return struct.unpack(f"<{n}d", self._take(8 * n, what))

    def vec3_i32(self, what: str = "Vector3<i32>") -> tuple:
        return (self.ivar("i32", what), self.ivar("i32", what), self.ivar("i32", what))

    def string(self, what: str = "str") -> str:
        n = self.length(what)
        at = self.pos
        try:
            return self._take(n, what).decode("utf-8")
        except UnicodeDecodeError as error:
            raise WireError(f"{what}: invalid UTF-8 at offset {at}: {error.reason}") from None

    def option(self, read_some, what: str = "Option"):
        at = self.pos
        tag = self.u8(what)
        if tag == 0:
            return None
        if tag == 1:
            return read_some()
        raise WireError(f"{what}: expects tag 0 or 1 at offset {at}, actual: {tag}")

    def expect_end(self, what: str) -> None:
        if self.pos != len(self.data):
            raise WireError(f"{what}: {len(self.data) - self.pos} trailing bytes after offset "
                            f"{self.pos} (payload has {len(self.data)})")


# =========================================================================================
# Vectorized varint runs (the bulk of a world payload)
# =========================================================================================

def encode_varint_array(values: np.ndarray) -> bytes:
    """Concatenated bincode varints of a flat array of unsigned values (< 2**64).

    Each value is laid out as a fixed row (tag or value byte, then its little-endian bytes)
    and a mask keeps each row's first 1, 3, 5 or 9 bytes: no per-value Python work.
    """
    values = np.ascontiguousarray(values).ravel()
    count = values.size
    if count == 0:
        return b""
    top = int(values.max())
    if top < _U16_TAG:
        return values.astype(np.uint8).tobytes()
    if top <= 0xFFFFFFFF:
        values, width = values.astype("<u4", copy=False), 4
    else:
        values, width = values.astype("<u8", copy=False), 8
    small = values < _U16_TAG
    mid = values <= 0xFFFF
    lengths = np.full(count, width + 1, dtype=np.int8)
    head = np.full(count, _U32_TAG if width == 4 else _U64_TAG, dtype=np.uint8)
    if width == 8:
        fits32 = values <= 0xFFFFFFFF
        lengths[fits32] = 5
        head[fits32] = _U32_TAG
    lengths[mid] = 3
    head[mid] = _U16_TAG
    lengths[small] = 1
    head[small] = values[small]
    rows = np.empty((count, width + 1), dtype=np.uint8)
    rows[:, 0] = head
    rows[:, 1:] = values.view(np.uint8).reshape(count, width)
    keep = np.arange(width + 1, dtype=np.int8) < lengths[:, None]
    return rows[keep].tobytes()


def decode_varint_array(data, offset: int, count: int, kind: str, what: str):
    """Decode ``count`` consecutive varints of ``kind`` from ``data[offset:]``.

    Returns (uint64 values, end offset). Start positions are found without a Python loop:
    each byte says how long a varint starting there is, and pointer doubling over that
    "next start" table gives the start of the i-th varint for every i at once.
    """
    buf = np.frombuffer(data, dtype=np.uint8)[offset:]
    size = buf.size
    if count == 0:
        return np.zeros(0, dtype=np.uint64), offset
    if size == 0:
        raise WireError(f"truncated payload: {what} needs {count} varints from offset {offset}, "
                        f"payload has {offset} bytes")
    if count <= size and int(buf[:count].max(initial=0)) < _U16_TAG:
        return buf[:count].astype(np.uint64), offset + count
    widths = np.ones(size + 1, dtype=np.int64)
    tags = buf.astype(np.int64)
    widths[:size][tags == _U16_TAG] = 3
    widths[:size][tags == _U32_TAG] = 5
    widths[:size][tags == _U64_TAG] = 9
    widths[:size][tags >= _U128_TAG] = 17
    jump = np.minimum(np.arange(size + 1, dtype=np.int64) + widths, size)
    index = np.arange(count, dtype=np.int64)
    starts = np.zeros(count, dtype=np.int64)
    table, bit = jump, 0
    while (1 << bit) < count:
        chosen = ((index >> bit) & 1).astype(bool)
        starts[chosen] = table[starts[chosen]]
        bit += 1
        if (1 << bit) < count:
            table = table[table]
    limit = {"u32": _U32_TAG, "u64": _U64_TAG}[kind]
    within = starts < size
    head = np.where(within, buf[np.minimum(starts, size - 1)], 0)
    bad = head > limit
    if bad.any():  # reported before truncation: a bad tag also garbles what follows it
        at = int(starts[np.argmax(bad)])
        tag = int(buf[at])
        if tag > _U128_TAG:
            raise WireError(f"{what}: invalid varint tag {tag} at offset {offset + at}")
        width = "u128" if tag == _U128_TAG else "u64"
        raise WireError(f"{what}: varint at offset {offset + at} holds a {width}, "
                        f"out of range for {kind}")
    last = int(starts[-1])
    if last >= size or last + int(widths[last]) > size:
        raise WireError(f"truncated payload: {what} needs {count} varints from offset {offset}, "
                        f"payload has {offset + size} bytes")
    values = head.astype(np.uint64)
    for tag, width in ((_U16_TAG, 2), (_U32_TAG, 4), (_U64_TAG, 8)):
        chosen = head == tag
        if not chosen.any():
            continue
        at = starts[chosen]
        wide = np.zeros(at.size, dtype=np.uint64)
        for k in range(width):
            wide |= buf[at + 1 + k].astype(np.uint64) << np.uint64(8 * k)
        values[chosen] = wide
    return values, offset + last + int(widths[last])


# =========================================================================================
# Plain data types (what decoding produces; encoders accept them too)
# =========================================================================================

@dataclass
class WorldData:
    """A VoxelGrid's cells as arrays: ``coords`` int32 (N, 3), ``bits`` uint32 (N,)."""

    coords: np.ndarray
    bits: np.ndarray

    def cells(self) -> dict:
        return {tuple(int(v) for v in c): int(b) for c, b in zip(self.coords, self.bits)}

    def __eq__(self, other) -> bool:  # order-insensitive, as the map is
        return isinstance(other, WorldData) and self.cells() == other.cells()


@dataclass
class IntentData:
    move_sequence: list  # MoveDir variant indices (0 None … 7 Undecided)
    urgency: float
    yaw: float


@dataclass
class SplineData:
    """The serde form of a Trajectory (voxelsim's SplineData struct)."""

    degree: int = 0
    knots: list = field(default_factory=list)
    ctrl_pts: list = field(default_factory=list)   # [(x, y, z), …]
    urgencies: list = field(default_factory=list)  # [(knot-domain progress, urgency), …]
    yaw_seq: list = field(default_factory=list)    # [(knot-domain progress, yaw), …]
    waypoints: list = field(default_factory=list)
    progress: float = 0.0
    length: float = 0.0


@dataclass
class ActionData:
    intent_queue: list  # [IntentData, …]
    trajectory: SplineData
    origin: tuple


@dataclass
class HoldData:
    coord: tuple
    yaw: float


@dataclass
class AgentData:
    pos: tuple
    vel: tuple
    thrust: tuple
    rate: tuple
    attitude: tuple  # (i, j, k, w)
    id: int
    state: object    # ActionData | HoldData


@dataclass
class ProjectionData:
    aspect: float = 1.4
    fov_vertical: float = 0.8
    max_distance: float = 50.0
    near_distance: float = 0.5


@dataclass
class PovData:
    virtual_world: WorldData
    agent_id: int
    proj: ProjectionData
    orientation: tuple  # quaternion (i, j, k, w)


def to_jsonable(value):
    """Plain JSON-ready form of decoded data (dataclasses → dicts, arrays → lists).

    A world becomes ``{"cells": [[x, y, z, bits], …]}``; an agent state gets a ``"kind"``
    of ``"Action"`` or ``"Hold"``; move sequences are given by name.
    """
    if isinstance(value, WorldData):
        rows = np.column_stack([value.coords.astype(np.int64), value.bits.astype(np.int64)])
        return {"cells": rows.tolist()}
    if isinstance(value, IntentData):
        return {"move_sequence": [MOVE_DIR_NAMES[m] for m in value.move_sequence],
                "urgency": value.urgency, "yaw": value.yaw}
    if is_dataclass(value):
        out = {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, (ActionData, HoldData)):
            out = {"kind": "Action" if isinstance(value, ActionData) else "Hold", **out}
        return out
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# =========================================================================================
# VoxelGrid
# =========================================================================================

def _as_world_arrays(world) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(world, WorldData):
        return world.coords, world.bits
    if isinstance(world, tuple) and len(world) == 2:
        return world
    data = world_data(world)  # a VoxelGrid or FilterWorld (anything with ``_arrays()``)
    return data.coords, data.bits


def encode_world_into(writer: Writer, coords, bits) -> None:
    coords = np.asarray(coords)
    bits = np.asarray(bits)
    n = len(bits)
    if coords.shape != (n, 3):
        raise ValueError(f"world coords: expects shape ({n}, 3), actual: {coords.shape}")
    if n and (int(coords.min()) < -(1 << 31) or int(coords.max()) >= (1 << 31)):
        raise ValueError("world coords: expects i32 values")
    if n and (int(bits.min()) < 0 or int(bits.max()) > 0xFFFFFFFF):
        raise ValueError("world cells: expects u32 bits")
    signed = coords.astype(np.int32, copy=False)
    table = np.empty((n, 4), dtype=np.uint32)
    table[:, :3] = ((signed << 1) ^ (signed >> 31)).view(np.uint32)  # zig-zag
    table[:, 3] = bits
    writer.length(n)
    writer.raw(encode_varint_array(table))


def encode_world(world) -> bytes:
    """bincode of a ``VoxelGrid``: ``world`` is a VoxelGrid, a WorldData or (coords, bits)."""
    coords, bits = _as_world_arrays(world)
    writer = Writer()
    encode_world_into(writer, coords, bits)
    return writer.getvalue()


def decode_world_from(reader: Reader, what: str = "VoxelGrid") -> WorldData:
    n = reader.length(f"{what}.cells length")
    values, reader.pos = decode_varint_array(reader.data, reader.pos, 4 * n, "u32",
                                             f"{what}.cells")
    table = values.reshape(n, 4)
    zz = table[:, :3].astype(np.int64)
    coords = np.where(zz & 1, -((zz + 1) >> 1), zz >> 1).astype(np.int32)
    return WorldData(coords=coords.reshape(n, 3), bits=table[:, 3].astype(np.uint32))


def decode_world(payload: bytes) -> WorldData:
    reader = Reader(payload)
    world = decode_world_from(reader)
    reader.expect_end("VoxelGrid")
    return world


# =========================================================================================
# HashMap<usize, Agent>
# =========================================================================================

def _encode_spline(w: Writer, spline: SplineData) -> None:
    knots = list(spline.knots)
    ctrl = [tuple(p) for p in spline.ctrl_pts]
    w.uvar(spline.degree)
    w.length(len(knots))
    w.f64s(knots)
    w.length(len(ctrl))
    w.f64s([c for p in ctrl for c in p])
    for pairs in (spline.urgencies, spline.yaw_seq):
        w.length(len(pairs))
        w.f64s([c for pair in pairs for c in pair])
    w.length(len(spline.waypoints))
    w.f64s(spline.waypoints)
    w.f64(spline.progress)
    w.f64(spline.length)


def _encode_agent(w: Writer, agent: AgentData) -> None:
    for vector in (agent.pos, agent.vel, agent.thrust, agent.rate):
        w.raw(_F64X3.pack(*(float(v) for v in vector)))
    w.raw(_F64X4.pack(*(float(v) for v in agent.attitude)))
    w.uvar(agent.id)
    state = agent.state
    if isinstance(state, HoldData):
        w.variant(1)
        w.vec3_i32(state.coord)
        w.f64(state.yaw)
        return
    w.variant(0)
    w.length(len(state.intent_queue))
    for intent in state.intent_queue:
        w.length(len(intent.move_sequence))
        for move in intent.move_sequence:
            w.variant(int(move))
        w.f64(intent.urgency)
        w.f64(intent.yaw)
    _encode_spline(w, state.trajectory)
    w.vec3_i32(state.origin)


def encode_agents(agents: dict) -> bytes:
    """bincode of ``HashMap<usize, Agent>``; values are AgentData or embedded Agents."""
    w = Writer()
    w.length(len(agents))
    for key, agent in agents.items():
        w.uvar(key)
        _encode_agent(w, agent if isinstance(agent, AgentData) else agent_data(agent))
    return w.getvalue()


def _decode_spline(r: Reader) -> SplineData:
    degree = r.uvar("u64", "SplineData.degree")
    knots = list(r.f64s(r.length("SplineData.knots length"), "SplineData.knots"))
    n = r.length("SplineData.ctrl_pts length")
    flat = r.f64s(3 * n, "SplineData.ctrl_pts")
    ctrl = [tuple(flat[3 * i:3 * i + 3]) for i in range(n)]
    pairs = []
    for name in ("urgencies", "yaw_seq"):
        n = r.length(f"SplineData.{name} length")
        flat = r.f64s(2 * n, f"SplineData.{name}")
        pairs.append([tuple(flat[2 * i:2 * i + 2]) for i in range(n)])
    waypoints = list(r.f64s(r.length("SplineData.waypoints length"), "SplineData.waypoints"))
    return SplineData(degree=degree, knots=knots, ctrl_pts=ctrl, urgencies=pairs[0],
                      yaw_seq=pairs[1], waypoints=waypoints,
                      progress=r.f64("SplineData.progress"), length=r.f64("SplineData.length"))


def _decode_agent(r: Reader) -> AgentData:
    pos, vel, thrust, rate = (r.f64s(3, f"Agent.{name}")
                              for name in ("pos", "vel", "thrust", "rate"))
    attitude = r.f64s(4, "Agent.attitude")
    agent_id = r.uvar("u64", "Agent.id")
    at = r.pos
    tag = r.variant("AgentState")
    if tag == 1:
        state = HoldData(coord=r.vec3_i32("AgentState::Hold.coord"),
                         yaw=r.f64("AgentState::Hold.yaw"))
    elif tag == 0:
        intents = []
        for _ in range(r.length("Action.intent_queue length")):
            moves = []
            for _ in range(r.length("ActionIntent.move_sequence length")):
                move_at = r.pos
                move = r.variant("MoveDir")
                if move >= len(MOVE_DIR_NAMES):
                    raise WireError(f"MoveDir: variant {move} at offset {move_at} is not one of "
                                    f"0..{len(MOVE_DIR_NAMES) - 1}")
                moves.append(move)
            intents.append(IntentData(moves, r.f64("ActionIntent.urgency"),
                                      r.f64("ActionIntent.yaw")))
        state = ActionData(intent_queue=intents, trajectory=_decode_spline(r),
                           origin=r.vec3_i32("Action.origin"))
    else:
        raise WireError(f"AgentState: variant {tag} at offset {at} is not one of "
                        f"0 (Action), 1 (Hold)")
    return AgentData(pos=pos, vel=vel, thrust=thrust, rate=rate, attitude=attitude,
                     id=agent_id, state=state)


def decode_agents(payload: bytes) -> dict:
    r = Reader(payload)
    agents = {}
    for _ in range(r.length("HashMap<usize, Agent> length")):
        key = r.uvar("u64", "agent key")
        agents[key] = _decode_agent(r)
    r.expect_end("HashMap<usize, Agent>")
    return agents


# =========================================================================================
# PovData
# =========================================================================================

def encode_pov(world, agent_id: int, proj, orientation) -> bytes:
    """bincode of ``PovData``: ``proj`` a ProjectionData or CameraProjection, ``orientation``
    a quaternion (i, j, k, w) or a CameraOrientation."""
    coords, bits = _as_world_arrays(world)
    proj = proj if isinstance(proj, ProjectionData) else projection_data(proj)
    quat = orientation if isinstance(orientation, (tuple, list)) else orientation_quat(orientation)
    w = Writer()
    encode_world_into(w, coords, bits)
    w.uvar(agent_id)
    w.f64s((proj.aspect, proj.fov_vertical, proj.max_distance, proj.near_distance))
    w.f64s(quat)
    return w.getvalue()


def decode_pov(payload: bytes) -> PovData:
    r = Reader(payload)
    world = decode_world_from(r, "PovData.virtual_world")
    agent_id = r.uvar("u64", "PovData.agent_id")
    proj = ProjectionData(*r.f64s(4, "PovData.proj"))
    quat = r.f64s(4, "PovData.orientation")
    r.expect_end("PovData")
    return PovData(virtual_world=world, agent_id=agent_id, proj=proj, orientation=quat)


# =========================================================================================
# Framing: [u32 LE length][payload]
# =========================================================================================

def frame(payload: bytes) -> bytes:
    if len(payload) > 0xFFFFFFFF:
        raise ValueError(f"frame: {len(payload)} bytes exceeds limit of {0xFFFFFFFF}")
    return _LEN.pack(len(payload)) + payload


class FrameDecoder:
    """Sans-I/O frame splitter: ``receive_data(bytes)`` then ``frames()`` yields payloads."""

    def __init__(self, max_frame: int = 1 << 30):
        self._buffer = bytearray()
        self._max = max_frame  # a length beyond this means the stream is not ours

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def frames(self) -> list:
        out = []
        while len(self._buffer) >= 4:
            (length,) = _LEN.unpack_from(self._buffer)
            if length > self._max:
                raise WireError(f"frame: {length} bytes exceeds limit of {self._max}")
            if len(self._buffer) < 4 + length:
                break
            out.append(bytes(self._buffer[4:4 + length]))
            del self._buffer[:4 + length]
        return out

    def pending(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buffer)


# =========================================================================================
# Adapters from embedded objects (duck-typed on their internal fields; no imports)
# =========================================================================================

def world_data(world) -> WorldData:
    """WorldData of an embedded VoxelGrid (its cached ``_arrays()``)."""
    coords, bits = world._arrays()
    return WorldData(coords=np.asarray(coords, dtype=np.int32).reshape(-1, 3),
                     bits=np.asarray(bits, dtype=np.uint32))


def projection_data(proj) -> ProjectionData:
    return ProjectionData(float(proj.aspect), float(proj.fov_vertical),
                          float(proj.max_distance), float(proj.near_distance))


def orientation_quat(orientation) -> tuple:
    """(i, j, k, w) of an embedded CameraOrientation."""
    return _quat_ijkw(orientation._quat)


def _quat_ijkw(quat) -> tuple:
    """Embedded quaternions are (w, x, y, z); nalgebra serializes (i, j, k, w) = (x, y, z, w)."""
    w, x, y, z = (float(v) for v in quat)
    return (x, y, z, w)


def spline_data(trajectory) -> SplineData:
    """SplineData of an embedded Trajectory (its public serde-named attributes)."""
    return SplineData(
        degree=int(trajectory.degree),
        knots=[float(v) for v in trajectory.knots],
        ctrl_pts=[tuple(float(c) for c in p) for p in trajectory.ctrl_pts],
        urgencies=[(float(a), float(b)) for a, b in trajectory.urgencies],
        yaw_seq=[(float(a), float(b)) for a, b in trajectory.yaw_seq],
        waypoints=[float(v) for v in trajectory.waypoints],
        progress=float(trajectory.progress),
        length=float(trajectory.length),
    )


def agent_data(agent) -> AgentData:
    """AgentData of an embedded Agent (fields ``_pos`` … ``_state``, see agent.py)."""
    state = agent._state
    if hasattr(state, "_intents"):  # an Action
        wire_state = ActionData(
            intent_queue=[IntentData([int(m) for m in i._moves], float(i._urgency),
                                     float(i._yaw)) for i in state._intents],
            trajectory=spline_data(state._trajectory),
            origin=tuple(int(c) for c in state._origin))
    else:  # a Hold
        wire_state = HoldData(coord=tuple(int(c) for c in state.coord), yaw=float(state.yaw))
    vec = (lambda v: tuple(float(c) for c in v))
    return AgentData(pos=vec(agent._pos), vel=vec(agent._vel), thrust=vec(agent._thrust),
                     rate=vec(agent._rate), attitude=_quat_ijkw(agent._attitude),
                     id=int(agent._id), state=wire_state)
