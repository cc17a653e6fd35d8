"""Specification of the renderer wire format (bincode 2, config::standard()) and the clients.

Byte vectors are derived by hand from the layouts in ``bgen/sim/embedded/wire.py`` (the
derivation is in each test's comment); the test run prints each vector and its size.
"""

import queue
import socket
import struct
import threading
import time
import unittest

import numpy as np

import bgen.sim.embedded as vxs
from bgen.sim.embedded import network, wire
from bgen.sim.embedded.network import RendererClient, AsyncRendererClient
from tests.timing import scaled

TIMEOUT = scaled(5.0)  # every bounded wait in this module


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def f64(*values) -> bytes:
    return struct.pack(f"<{len(values)}d", *values)


def show(name: str, payload: bytes) -> None:
    print(f"\n  {name}: {len(payload)} bytes: {payload.hex(' ')}")


def terrain_world(size: int = 200, depth: int = 12):
    """A 200 × 200 rolling terrain, solid a few cells deep (for timing prints)."""
    xs, ys = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    height = (5 + 4 * np.sin(xs / 9.0) * np.cos(ys / 7.0)).astype(int)
    layers = [np.column_stack([xs[m], ys[m], np.full(m.sum(), -dz)])
              for dz in range(depth) for m in [dz <= height]]
    coords = np.concatenate(layers).astype(np.int32)
    return coords, np.full(len(coords), 16 | 64, dtype=np.uint32)


# =========================================================================================
# Primitives
# =========================================================================================

class TestVarints(unittest.TestCase):
    def test_unsigned_varints_use_bincode_length_classes(self):
        table = [
            (0, "00"), (250, "fa"),                     # < 251: the value itself
            (251, "fb fb 00"), (65535, "fb ff ff"),     # 251 tag, u16 LE
            (65536, "fc 00 00 01 00"), (2**32 - 1, "fc ff ff ff ff"),  # 252 tag, u32 LE
            (2**32, "fd 00 00 00 00 01 00 00 00"),      # 253 tag, u64 LE
        ]
        for value, expected in table:
            with self.subTest(value=value):
                self.assertEqual(wire.varint(value), h(expected))
                self.assertEqual(wire.encode_varint_array(np.array([value], np.uint64)),
                                 h(expected))
                self.assertEqual(wire.Reader(h(expected)).uvar("u64"), value)

    def test_signed_integers_are_zigzagged(self):
        for value, expected in [(0, "00"), (-1, "01"), (1, "02"), (-2, "03"), (125, "fa"),
                                (-126, "fb fb 00"), (2**31 - 1, "fc fe ff ff ff"),
                                (-(2**31), "fc ff ff ff ff")]:
            with self.subTest(value=value):
                w = wire.Writer()
                w.ivar(value, "i32")
                self.assertEqual(w.getvalue(), h(expected))
                self.assertEqual(wire.Reader(h(expected)).ivar("i32"), value)

    def test_vectorized_varints_equal_scalar_varints(self):
        rng = np.random.default_rng(7)
        values = np.concatenate([rng.integers(0, 300, 500), rng.integers(0, 2**20, 300),
                                 rng.integers(0, 2**40, 200)]).astype(np.uint64)
        rng.shuffle(values)
        expected = b"".join(wire.varint(int(v)) for v in values)
        self.assertEqual(wire.encode_varint_array(values), expected)
        decoded, end = wire.decode_varint_array(expected, 0, len(values), "u64", "test")
        self.assertEqual(decoded.tolist(), values.tolist())
        self.assertEqual(end, len(expected))

    def test_option_is_a_zero_or_one_byte_then_the_value(self):
        w = wire.Writer()
        w.option(None, w.f64)
        w.option(0.5, w.f64)
        self.assertEqual(w.getvalue(), h("00 01") + f64(0.5))
        r = wire.Reader(w.getvalue())
        self.assertEqual((r.option(r.f64), r.option(r.f64)), (None, 0.5))

    def test_string_is_a_length_then_utf8(self):
        w = wire.Writer()
        w.string("né")
        self.assertEqual(w.getvalue(), h("03 6e c3 a9"))
        self.assertEqual(wire.Reader(w.getvalue()).string(), "né")


class TestDecodeErrors(unittest.TestCase):
    def test_malformed_payloads_name_what_and_where(self):
        cases = [
            ("truncated world", wire.decode_world, h("01 02 04"),
             "truncated payload: VoxelGrid.cells needs 4 varints from offset 1, payload has 3 bytes"),
            ("varint tag 255", wire.decode_world, h("01 ff 00 00 00"),
             "VoxelGrid.cells: invalid varint tag 255 at offset 1"),
            ("u64 where a u32 goes", wire.decode_world, h("01 fd 00 00 00 00 00 00 00 00 00 00 00"),
             "VoxelGrid.cells: varint at offset 1 holds a u64, out of range for u32"),
            ("trailing bytes", wire.decode_world, h("00 00"),
             "VoxelGrid: 1 trailing bytes after offset 1 (payload has 2)"),
            ("length beyond payload", wire.decode_agents, h("05"),
             "HashMap<usize, Agent> length: length 5 at offset 0 exceeds the 0 bytes left"),
            ("unknown agent state", wire.decode_agents, h("01 00") + f64(*[0.0] * 16) + h("00 07"),
             "AgentState: variant 7 at offset 131 is not one of 0 (Action), 1 (Hold)"),
            ("short f64", wire.decode_pov, h("00 00") + f64(1.4)[:5],
             "truncated payload: PovData.proj needs 32 bytes at offset 2, payload has 7"),
        ]
        for name, decode, payload, message in cases:
            with self.subTest(name):
                with self.assertRaises(wire.WireError) as caught:
                    decode(payload)
                self.assertEqual(str(caught.exception), message)


# =========================================================================================
# VoxelGrid
# =========================================================================================

class TestWorldBytes(unittest.TestCase):
    def test_empty_world_is_one_zero_byte(self):
        # cells: DashMap serialized as a map → u64 varint length 0.
        payload = wire.encode_world(vxs.VoxelGrid())
        show("empty world", payload)
        self.assertEqual(payload, h("00"))
        self.assertEqual(wire.frame(payload), h("01 00 00 00 00"))

    def test_one_cell_world_is_length_coordinates_and_bits(self):
        # len 1 → 01; key Vector3<i32> (1, -2, 3) → a tuple of zig-zag varints 02 03 06;
        # value Cell FILLED → bitflags' bits as a u32 varint: 16 → 10.
        world = vxs.VoxelGrid.from_dict_py({(1, -2, 3): vxs.Cell.filled()})
        payload = wire.encode_world(world)
        show("one-cell world", payload)
        self.assertEqual(payload, h("01 02 03 06 10"))

    def test_wide_coordinates_and_flags_take_tagged_varints(self):
        # (200, -300, 0): zig-zag 400 = 0x190 → fb 90 01; 599 = 0x257 → fb 57 02; 0 → 00;
        # INTEREST = 256 → fb 00 01.
        world = vxs.VoxelGrid.from_dict_py({(200, -300, 0): vxs.Cell.interest()})
        payload = wire.encode_world(world)
        show("wide one-cell world", payload)
        self.assertEqual(payload, h("01 fb 90 01 fb 57 02 00 fb 00 01"))

    def test_worlds_round_trip_whatever_the_value_ranges(self):
        rng = np.random.default_rng(3)
        for name, low, high in [("small", -100, 100), ("terrain", 0, 400),
                                ("extreme", -(2**31), 2**31 - 1)]:
            with self.subTest(name):
                coords = np.unique(rng.integers(low, high, (3000, 3), dtype=np.int64), axis=0)
                bits = rng.integers(0, 2**32 - 1, len(coords), dtype=np.uint64)
                decoded = wire.decode_world(wire.encode_world((coords, bits)))
                self.assertEqual(decoded.coords.tolist(), coords.tolist())
                self.assertEqual(decoded.bits.tolist(), bits.tolist())

    def test_world_encoding_equals_cell_by_cell_encoding(self):
        coords, bits = terrain_world(20, 4)
        w = wire.Writer()
        w.length(len(bits))
        for (x, y, z), b in zip(coords.tolist(), bits.tolist()):
            w.vec3_i32((x, y, z))
            w.uvar(b, "u32")
        self.assertEqual(wire.encode_world((coords, bits)), w.getvalue())

    def test_a_200_by_200_terrain_encodes_quickly(self):
        coords, bits = self._terrain()
        world = vxs.VoxelGrid._from_arrays(coords, bits)
        started = time.perf_counter()
        payload = wire.encode_world(world)
        encoded = time.perf_counter() - started
        started = time.perf_counter()
        decoded = wire.decode_world(payload)
        decoded_s = time.perf_counter() - started
        print(f"\n  terrain world: {len(bits)} cells, {len(payload)} bytes, "
              f"encode {encoded * 1000:.1f} ms, decode {decoded_s * 1000:.1f} ms")
        self.assertEqual(len(decoded.bits), len(bits))

    @staticmethod
    def _terrain():
        try:
            generator = vxs.TerrainGenerator()
            config = vxs.TerrainConfig.default_py()
            config.set_world_dimensions_py(200, 30, 200)
            generator.generate_terrain_py(config)
            return generator.generate_world_py()._arrays()
        except Exception:  # terrain module not available: a synthetic terrain of the same size
            return terrain_world()


# =========================================================================================
# Agents
# =========================================================================================

HOLD_AGENT_BYTES = (
    h("01 07")                      # map len 1; key usize 7
    + f64(1.0, 2.0, -3.0)           # pos: Vector3<f64> as a 3-tuple
    + f64(*[0.0] * 9)               # vel, thrust, rate
    + f64(0.0, 0.0, 0.0, 1.0)       # attitude: identity quaternion as (i, j, k, w)
    + h("07")                       # id usize 7
    + h("01")                       # AgentState::Hold is variant 1
    + h("02 04 05")                 # coord (1, 2, -3) zig-zag
    + f64(0.5)                      # yaw
)

ONE_MOVE_SPLINE = wire.SplineData(
    degree=1, knots=[0.0, 0.0, 1.0, 1.0], ctrl_pts=[(1.0, 2.0, -3.0), (2.0, 2.0, -3.0)],
    urgencies=[(1.0, 1.0)], yaw_seq=[(1.0, 0.0)], waypoints=[0.0, 1.0], progress=0.0,
    length=1.0)

ACTION_AGENT_BYTES = (
    h("01 03")                      # map len 1; key 3
    + f64(1.0, 2.0, -3.0) + f64(*[0.0] * 9) + f64(0.0, 0.0, 0.0, 1.0)
    + h("03")                       # id 3
    + h("00")                       # AgentState::Action is variant 0
    + h("01")                       # intent_queue: VecDeque len 1
    + h("01 01")                    #   move_sequence len 1, MoveDir::Forward = variant 1
    + f64(1.0, 0.0)                 #   urgency, yaw
    + h("01")                       # trajectory (SplineData): degree usize 1
    + h("04") + f64(0.0, 0.0, 1.0, 1.0)                 # knots
    + h("02") + f64(1.0, 2.0, -3.0, 2.0, 2.0, -3.0)     # ctrl_pts: Vec<[f64; 3]>
    + h("01") + f64(1.0, 1.0)                           # urgencies: Vec<(f64, f64)>
    + h("01") + f64(1.0, 0.0)                           # yaw_seq
    + h("02") + f64(0.0, 1.0)                           # waypoints
    + f64(0.0, 1.0)                 # progress, length
    + h("02 04 05")                 # origin (1, 2, -3)
)


class TestAgentBytes(unittest.TestCase):
    def test_a_holding_agent(self):
        agent = wire.AgentData(pos=(1.0, 2.0, -3.0), vel=(0.0,) * 3, thrust=(0.0,) * 3,
                               rate=(0.0,) * 3, attitude=(0.0, 0.0, 0.0, 1.0), id=7,
                               state=wire.HoldData(coord=(1, 2, -3), yaw=0.5))
        payload = wire.encode_agents({7: agent})
        show("holding agent", payload)
        self.assertEqual(payload, HOLD_AGENT_BYTES)
        self.assertEqual(wire.decode_agents(payload), {7: agent})

    def test_an_agent_with_a_one_move_action(self):
        agent = wire.AgentData(
            pos=(1.0, 2.0, -3.0), vel=(0.0,) * 3, thrust=(0.0,) * 3, rate=(0.0,) * 3,
            attitude=(0.0, 0.0, 0.0, 1.0), id=3,
            state=wire.ActionData(intent_queue=[wire.IntentData([1], 1.0, 0.0)],
                                  trajectory=ONE_MOVE_SPLINE, origin=(1, 2, -3)))
        payload = wire.encode_agents({3: agent})
        show("agent with a one-move action", payload)
        self.assertEqual(payload, ACTION_AGENT_BYTES)
        self.assertEqual(wire.decode_agents(payload), {3: agent})

    def test_embedded_agents_encode_from_their_internal_state(self):
        holding = vxs.Agent(7)
        holding.set_hold_py([1, 2, -3], 0.5)
        self.assertEqual(wire.encode_agents({7: holding}), HOLD_AGENT_BYTES)
        moving = vxs.Agent(3)
        moving.set_hold_py([1, 2, -3], 0.0)
        moving.perform_oneshot_py(vxs.ActionIntent(1.0, 0.0, [vxs.MoveDir.Forward]))
        self.assertEqual(wire.encode_agents({3: moving}), ACTION_AGENT_BYTES)

    def test_decoded_agents_become_plain_json(self):
        decoded = wire.decode_agents(ACTION_AGENT_BYTES)
        state = wire.to_jsonable(decoded)["3"]["state"]
        self.assertEqual(state["kind"], "Action")
        self.assertEqual(state["intent_queue"][0]["move_sequence"], ["Forward"])
        self.assertEqual(state["trajectory"]["ctrl_pts"], [[1.0, 2.0, -3.0], [2.0, 2.0, -3.0]])

    def test_agent_maps_round_trip(self):
        agents = {}
        for i in range(5):
            agent = vxs.Agent(i)
            agent.set_hold_py([i, -i, 2 * i], 0.1 * i)
            if i % 2:
                agent.perform_oneshot_py(vxs.ActionIntent(
                    0.5 + i, 0.2, [vxs.MoveDir.Up, vxs.MoveDir.Left, vxs.MoveDir.Forward]))
            agents[i] = agent
        payload = wire.encode_agents(agents)
        self.assertEqual(wire.decode_agents(payload),
                         {i: wire.agent_data(a) for i, a in agents.items()})


# =========================================================================================
# PovData
# =========================================================================================

class TestPovBytes(unittest.TestCase):
    def test_pov_data_is_world_agent_id_projection_orientation(self):
        # virtual_world: one cell (0, 0, -1) FILLED → 01 00 00 01 10; agent_id 0 → 00;
        # proj: aspect, fov_vertical, max_distance, near_distance; orientation quat (i, j, k, w).
        world = vxs.VoxelGrid.from_dict_py({(0, 0, -1): vxs.Cell.filled()})
        payload = wire.encode_pov(world, 0, vxs.CameraProjection.default_py(),
                                  (0.0, 0.0, 0.0, 1.0))
        show("PovData", payload)
        self.assertEqual(payload, h("01 00 00 01 10") + h("00")
                         + f64(1.4, 0.8, 50.0, 0.5) + f64(0.0, 0.0, 0.0, 1.0))
        decoded = wire.decode_pov(payload)
        self.assertEqual(decoded.virtual_world.cells(), {(0, 0, -1): 16})
        self.assertEqual((decoded.agent_id, decoded.proj, decoded.orientation),
                         (0, wire.ProjectionData(1.4, 0.8, 50.0, 0.5), (0.0, 0.0, 0.0, 1.0)))

    def test_camera_orientation_goes_out_as_i_j_k_w(self):
        orientation = vxs.CameraOrientation.vertical_tilt_py(-0.5)
        i, j, k, w = wire.orientation_quat(orientation)
        # A tilt about +y (Forward × Up): only j and w are non-zero, j = sin(tilt / 2).
        self.assertAlmostEqual(j, np.sin(-0.25))
        self.assertAlmostEqual(w, np.cos(-0.25))
        self.assertEqual((i, k), (0.0, 0.0))


class TestFrameDecoder(unittest.TestCase):
    def test_frames_survive_any_split(self):
        payloads = [b"", b"a", bytes(range(256)) * 3]
        stream = b"".join(wire.frame(p) for p in payloads)
        for cut in (1, 3, 4, 5, 7, 100):
            with self.subTest(chunk=cut):
                decoder = wire.FrameDecoder()
                got = []
                for start in range(0, len(stream), cut):
                    decoder.receive_data(stream[start:start + cut])
                    got.extend(decoder.frames())
                self.assertEqual(got, payloads)
                self.assertEqual(decoder.pending(), 0)

    def test_a_frame_over_the_limit_is_refused(self):
        decoder = wire.FrameDecoder(max_frame=10)
        decoder.receive_data(struct.pack("<I", 11))
        with self.assertRaises(wire.WireError) as caught:
            decoder.frames()
        self.assertEqual(str(caught.exception), "frame: 11 bytes exceeds limit of 10")


# =========================================================================================
# RendererClient over loopback
# =========================================================================================

class Listener:
    """A loopback listener that decodes every frame it receives into ``frames``."""

    def __init__(self, name: str, frames: queue.Queue, port: int = 0):
        self.name = name
        self.frames = frames
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.sock.settimeout(TIMEOUT)
        self.port = self.sock.getsockname()[1]
        self.connections = []
        self.accepted = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.connections.append(conn)
        self.accepted.set()
        conn.settimeout(TIMEOUT)
        decoder = wire.FrameDecoder()
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            decoder.receive_data(data)
            for payload in decoder.frames():
                self.frames.put((self.name, payload))

    def close(self):
        self.sock.close()
        for conn in self.connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes the reader thread at once
            except OSError:
                pass
            conn.close()
        self.thread.join(TIMEOUT)


def closed_port() -> int:
    """A loopback port with nothing listening (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RendererTestCase(unittest.TestCase):
    def setUp(self):
        self.frames = queue.Queue()
        self.listeners = {name: Listener(name, self.frames)
                          for name in ("world", "agents", "pov", "pov_agents")}
        self.addCleanup(lambda: [listener.close() for listener in self.listeners.values()])

    def ports(self):
        return [self.listeners[n].port for n in ("world", "agents", "pov", "pov_agents")]

    def next_frame(self):
        return self.frames.get(timeout=TIMEOUT)

    def frames_by_stream(self, count: int) -> dict:
        got = {}
        for _ in range(count):
            name, payload = self.next_frame()
            got.setdefault(name, []).append(payload)
        return got


class TestRendererClient(RendererTestCase):
    def client(self):
        client = RendererClient("127.0.0.1", *self.ports(), 1)
        self.addCleanup(client.close)
        return client

    def test_the_constructor_connects_every_stream(self):
        self.client()
        for listener in self.listeners.values():
            self.assertTrue(listener.accepted.wait(TIMEOUT), listener.name)

    def test_send_world_writes_one_decodable_frame_to_the_world_port(self):
        world = vxs.VoxelGrid.from_dict_py({(1, 2, 3): vxs.Cell.filled(),
                                            (-4, 5, -6): vxs.Cell.sparse()})
        self.client().send_world_py(world)
        name, payload = self.next_frame()
        self.assertEqual(name, "world")
        self.assertEqual(wire.decode_world(payload).cells(), {(1, 2, 3): 16, (-4, 5, -6): 32})

    def test_send_agents_goes_to_the_agent_port_and_every_pov_agent_port(self):
        agent = vxs.Agent(0)
        agent.set_hold_py([3, 4, -5], 0.0)
        self.client().send_agents_py({0: agent})
        got = self.frames_by_stream(2)
        self.assertEqual(sorted(got), ["agents", "pov_agents"])
        for payloads in got.values():
            self.assertEqual(wire.decode_agents(payloads[0]), {0: wire.agent_data(agent)})

    def test_filter_world_pov_goes_to_the_pov_port(self):
        client = self.client()
        fw = vxs.FilterWorld()
        fw.send_pov_py(client, 0, 0, vxs.CameraProjection.default_py(),
                       vxs.CameraOrientation.vertical_tilt_py(-0.5))
        name, payload = self.next_frame()
        self.assertEqual(name, "pov")
        pov = wire.decode_pov(payload)
        self.assertEqual((len(pov.virtual_world.bits), pov.agent_id, pov.proj.max_distance),
                         (0, 0, 50.0))

    def test_a_pov_stream_index_that_does_not_exist_fails_like_voxelsim(self):
        with self.assertRaises(Exception) as caught:
            vxs.FilterWorld().send_pov_py(self.client(), 1, 0, vxs.CameraProjection.default_py(),
                                          vxs.CameraOrientation.vertical_tilt_py(0.0))
        self.assertIs(type(caught.exception), Exception)
        self.assertEqual(str(caught.exception), "Could not send pov: Not connected to pov port")

    def test_frames_arrive_in_order_and_whole(self):
        client = self.client()
        for i in range(20):
            client.send_world_py(vxs.VoxelGrid.from_dict_py({(i, 0, 0): vxs.Cell.filled()}))
        for i in range(20):
            _, payload = self.next_frame()
            self.assertEqual(wire.decode_world(payload).cells(), {(i, 0, 0): 16})

    def test_sending_after_close_says_not_connected(self):
        client = self.client()
        client.close()
        with self.assertRaises(Exception) as caught:
            client.send_world_py(vxs.VoxelGrid())
        self.assertEqual(str(caught.exception), "Failed to send world: Not connected to world port")

    def test_a_renderer_that_went_away_fails_the_send_with_the_os_error(self):
        client = self.client()
        self.assertTrue(self.listeners["world"].accepted.wait(TIMEOUT))
        self.listeners["world"].close()
        deadline = time.monotonic() + TIMEOUT
        message = None
        while message is None and time.monotonic() < deadline:
            try:
                client.send_world_py(vxs.VoxelGrid())
            except Exception as error:  # the first writes may still be accepted by the kernel
                message = str(error)
        self.assertIn(message, ("Failed to send world: Broken pipe (os error 32)",
                                "Failed to send world: Connection reset by peer (os error 104)"))

    def test_arguments_are_converted_as_pyo3_does(self):
        client = self.client()
        cases = [
            (lambda: client.send_world_py(42),
             "argument 'world': 'int' object cannot be converted to 'VoxelGrid'"),
            (lambda: client.send_agents_py([vxs.Agent(0)]),
             "argument 'agents': 'list' object cannot be converted to 'PyDict'"),
            (lambda: client.send_agents_py({0: "agent"}),
             "argument 'agents': 'str' object cannot be converted to 'Agent'"),
            (lambda: RendererClient(1, *self.ports(), 1),
             "argument 'host': 'int' object cannot be converted to 'PyString'"),
            (lambda: RendererClient("127.0.0.1", 8080.0, 1, 2, 3, 1),
             "argument 'world_port': 'float' object cannot be interpreted as an integer"),
        ]
        for call, message in cases:
            with self.subTest(message):
                with self.assertRaises(TypeError) as caught:
                    call()
                self.assertEqual(str(caught.exception), message)


class TestRendererClientWithoutRenderer(unittest.TestCase):
    def test_nothing_listening_fails_the_constructor_with_the_os_error(self):
        port = closed_port()
        for cls in (RendererClient, AsyncRendererClient):
            with self.subTest(cls.__name__):
                with self.assertRaises(Exception) as caught:
                    cls("127.0.0.1", port, port, port, port, 1)
                self.assertIs(type(caught.exception), Exception)
                self.assertEqual(str(caught.exception),
                                 "Failed to create render client: Connection refused (os error 111)")

    def test_a_missing_pov_pair_names_the_agent_index(self):
        frames = queue.Queue()
        world, agents = Listener("world", frames), Listener("agents", frames)
        self.addCleanup(world.close)
        self.addCleanup(agents.close)
        with self.assertRaises(Exception) as caught:
            RendererClient("127.0.0.1", world.port, agents.port, closed_port(), closed_port(), 1)
        self.assertEqual(str(caught.exception), "Failed to create render client: "
                                                "Could not connect pov/agent stream for agent 0")

    def test_default_localhost_uses_voxelsims_ports(self):
        self.assertEqual((network.DEFAULT_HOST, network.DEFAULT_PORTS),
                         ("127.0.0.1", (8080, 8081, 8090, 9090)))


class TestAsyncRendererClient(RendererTestCase):
    def client(self):
        client = AsyncRendererClient("127.0.0.1", *self.ports(), 1)
        self.addCleanup(client.close)
        return client

    def test_sends_return_at_once_and_frames_arrive(self):
        client = self.client()
        agent = vxs.Agent(1)
        client.send_world_py(vxs.VoxelGrid.from_dict_py({(0, 0, 0): vxs.Cell.filled()}))
        client.send_agents_py({1: agent})
        vxs.FilterWorld().send_pov_async_py(client, 0, 1, vxs.CameraProjection.default_py(),
                                            vxs.CameraOrientation.vertical_tilt_py(-0.5))
        self.assertTrue(client.flush(TIMEOUT))
        got = self.frames_by_stream(4)
        self.assertEqual(sorted(got), ["agents", "pov", "pov_agents", "world"])
        self.assertEqual(wire.decode_world(got["world"][0]).cells(), {(0, 0, 0): 16})
        self.assertEqual(wire.decode_pov(got["pov"][0]).agent_id, 1)

    def test_a_world_edited_after_sending_goes_out_as_it_was(self):
        client = self.client()
        world = vxs.VoxelGrid.from_dict_py({(0, 0, 0): vxs.Cell.filled()})
        client.send_world_py(world)
        world.add_target_cell([9, 9, 9])
        self.assertTrue(client.flush(TIMEOUT))
        _, payload = self.next_frame()
        self.assertEqual(wire.decode_world(payload).cells(), {(0, 0, 0): 16})

    def test_a_full_queue_drops_its_oldest_frames(self):
        client = self.client()
        release = threading.Event()
        started = threading.Event()

        def blocker():
            started.set()
            release.wait(TIMEOUT)

        client._submit("world", blocker)  # holds the writer so the queue fills up
        self.assertTrue(started.wait(TIMEOUT))
        for i in range(client.queue_size + 2):
            world = vxs.VoxelGrid.from_dict_py({(i, 0, 0): vxs.Cell.filled()})
            client.send_world_py(world)
        self.assertEqual(client.dropped, 2)
        release.set()
        self.assertTrue(client.flush(TIMEOUT))
        sent = [wire.decode_world(self.next_frame()[1]).cells() for _ in range(client.queue_size)]
        self.assertEqual(sent, [{(i, 0, 0): 16} for i in range(2, client.queue_size + 2)])

    def test_a_failed_async_send_is_silent(self):
        client = self.client()
        client._client.close()
        client.send_world_py(vxs.VoxelGrid())  # no exception, as voxelsim
        self.assertTrue(client.flush(TIMEOUT))


if __name__ == "__main__":
    unittest.main()
