"""Specification of the render WebSocket formats and of rendering end to end.

``/ws/render/<run_id>/<channel>`` serves each renderer frame as ``?format=base64`` (the default
envelope with ``payload_b64``), ``?format=binary`` (one ``[u32 LE length][payload]`` message) or
``?format=json`` (the frame decoded). The last class runs ``python bgen_server.py`` with a
rendered run and decodes what arrives with ``bgen.sim.embedded.wire``.
"""

import asyncio
import base64
import io
import json
import math
import tempfile
import threading
import unittest
from contextlib import redirect_stdout
from pathlib import Path
from unittest import mock

import numpy as np
from websockets.asyncio.client import connect

import bgen_server
from bgen.errors import BadRequest
from bgen.bench.runner import STANDARD_POLICY
from bgen.server.validation import parse_subscribe, parse_ws_path
from bgen.sim import load_backend, scenarios
from bgen.bench import render as render_bench
from bgen.sim.embedded import wire
from bgen.bench.render import FrameCount
from bgen_server import EventHub, Subscriber, decoded_frame_message
from tests.test_server_support import (LONG, QUICK, FINAL, ServerProcess, TIMEOUT, quiet_server_log,
                                       request)

setUpModule, tearDownModule = quiet_server_log()


def world_payload() -> bytes:
    coords = np.array([[1, -2, 3], [200, -300, 0]], dtype=np.int32)
    return wire.encode_world(wire.WorldData(coords, np.array([16, 256], dtype=np.uint32)))


def hold_agent(agent_id=7, pos=(1.0, 2.0, -3.0)) -> wire.AgentData:
    return wire.AgentData(pos=pos, vel=(0.5, 0.0, -0.25), thrust=(0.0, 0.0, 9.8), rate=(0.0, 0.0, 0.0),
                          attitude=(0.0, 0.0, 0.0, 1.0), id=agent_id,
                          state=wire.HoldData(coord=(1, 2, -3), yaw=0.5))


def flying_agent(agent_id=3) -> wire.AgentData:
    spline = wire.SplineData(degree=3, knots=[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0],
                             ctrl_pts=[(0.5, 0.5, 0.5), (1.0, 0.5, 0.5), (1.5, 0.5, 0.5), (2.5, 0.5, 0.5)],
                             urgencies=[(0.0, 0.8), (1.0, 0.8)], yaw_seq=[(0.0, 0.0), (1.0, 0.1)],
                             waypoints=[0.0, 1.0], progress=0.25, length=2.0)
    action = wire.ActionData(intent_queue=[wire.IntentData([1, 1, 5], 0.8, 0.1)], trajectory=spline,
                             origin=(0, 0, 0))
    return wire.AgentData(pos=(0.6, 0.5, 0.5), vel=(1.0, 0.0, 0.0), thrust=(0.0, 0.0, 9.8),
                          rate=(0.0, 0.1, 0.0), attitude=(0.0, 0.05, 0.0, 0.9987), id=agent_id,
                          state=action)


def decoded(channel: str, payload: bytes) -> dict:
    return json.loads(decoded_frame_message(channel, payload, 12.5))


# ----------------------------------------------------------------------------- pure decoding

class TestDecodedFrames(unittest.TestCase):
    def test_a_world_frame_becomes_flat_coords_and_parallel_bits(self):
        self.assertEqual(decoded("world", world_payload()),
                         {"type": "frame", "channel": "world", "len": len(world_payload()), "ts": 12.5,
                          "data": {"count": 2, "coords": [1, -2, 3, 200, -300, 0], "bits": [16, 256]}})

    def test_an_agents_frame_becomes_the_codec_json_form_keyed_by_agent_id(self):
        agents = {7: hold_agent(), 3: flying_agent()}
        payload = wire.encode_agents(agents)
        for channel in ("agents", "pov_agents_0", "pov_agents_12"):
            with self.subTest(channel=channel):
                message = decoded(channel, payload)
                self.assertEqual((message["type"], message["channel"], message["len"]),
                                 ("frame", channel, len(payload)))
                self.assertEqual(message["data"], json.loads(json.dumps(wire.to_jsonable(agents))))
        data = decoded("agents", payload)["data"]
        self.assertEqual(data["7"]["state"], {"kind": "Hold", "coord": [1, 2, -3], "yaw": 0.5})
        self.assertEqual(data["3"]["state"]["intent_queue"][0]["move_sequence"], ["Forward", "Forward", "Up"])
        self.assertEqual(data["3"]["state"]["trajectory"]["ctrl_pts"][3], [2.5, 0.5, 0.5])
        self.assertEqual(data["3"]["pos"], [0.6, 0.5, 0.5])

    def test_a_pov_frame_becomes_its_world_agent_projection_and_orientation(self):
        payload = wire.encode_pov(wire.decode_world(world_payload()), 2, wire.ProjectionData(),
                                  (0.0, -0.25, 0.0, 0.97))
        self.assertEqual(decoded("pov_world_2", payload)["data"], {
            "virtual_world": {"count": 2, "coords": [1, -2, 3, 200, -300, 0], "bits": [16, 256]},
            "agent_id": 2,
            "proj": {"aspect": 1.4, "fov_vertical": 0.8, "max_distance": 50.0, "near_distance": 0.5},
            "orientation": [0.0, -0.25, 0.0, 0.97]})

    def test_a_frame_that_does_not_decode_becomes_a_frame_error_naming_why(self):
        agents = wire.encode_agents({7: hold_agent()})
        bad_variant = agents[:131] + b"\x05" + agents[132:]
        table = [
            ("world", world_payload()[:-1],
             "cannot decode the world frame: truncated payload: VoxelGrid.cells needs 8 varints from "
             "offset 1, payload has 14 bytes"),
            ("world", world_payload() + b"\x00",
             "cannot decode the world frame: VoxelGrid: 1 trailing bytes after offset 15 (payload has 16)"),
            ("agents", b"", "cannot decode the agents frame: truncated payload: HashMap<usize, Agent> "
                            "length needs 1 bytes at offset 0, payload has 0"),
            ("agents", bad_variant,
             "cannot decode the agents frame: AgentState: variant 5 at offset 131 is not one of "
             "0 (Action), 1 (Hold)"),
            ("pov_agents_2", agents + b"\x01",
             "cannot decode the pov_agents_2 frame: HashMap<usize, Agent>: 1 trailing bytes after "
             "offset 143 (payload has 144)"),
            ("pov_world_0", world_payload(),
             "cannot decode the pov_world_0 frame: truncated payload: PovData.agent_id needs 1 bytes "
             "at offset 15, payload has 15"),
        ]
        for channel, payload, error in table:
            with self.subTest(channel=channel, error=error):
                self.assertEqual(decoded(channel, payload),
                                 {"type": "frame_error", "channel": channel, "len": len(payload),
                                  "ts": 12.5, "error": error})

    def test_a_frame_holding_nan_becomes_a_frame_error_not_invalid_json(self):
        payload = wire.encode_agents({7: hold_agent(pos=(math.nan, 2.0, -3.0))})
        self.assertEqual(decoded("agents", payload)["error"],
                         "the agents frame holds a NaN or infinite number, which JSON cannot carry")

    def test_a_decoder_fault_becomes_a_frame_error_too(self):
        with mock.patch.object(wire, "decode_world", side_effect=IndexError("index 9 is out of bounds")):
            message = decoded("world", world_payload())
        self.assertEqual((message["type"], message["error"]),
                         ("frame_error", "cannot decode the world frame: IndexError: index 9 is out of bounds"))


# ----------------------------------------------------------------------------- format parsing

class TestRenderFormatQuery(unittest.TestCase):
    def test_base64_is_the_default_and_each_format_can_be_named(self):
        self.assertEqual(parse_ws_path("/ws/render/ab12/world").format, "base64")
        self.assertEqual(parse_subscribe({"type": "subscribe", "topic": "render:ab12:world"}).format, "base64")
        for fmt in ("base64", "binary", "json"):
            with self.subTest(format=fmt):
                self.assertEqual(parse_ws_path(f"/ws/render/ab12/agents?format={fmt}").format, fmt)

    def test_an_unknown_format_is_a_bad_request_listing_the_formats(self):
        with self.assertRaises(BadRequest) as caught:
            parse_ws_path("/ws/render/ab12/world?format=decoded")
        self.assertEqual((caught.exception.message, caught.exception.field),
                         ("format: expects one of base64, binary, json, actual: 'decoded'", "format"))


# ----------------------------------------------------------------------------- the hub

class RecordingSocket:
    """Stands in for a websocket: keeps what is sent, signals once ``expected`` messages came."""

    def __init__(self, expected: int = 1):
        self.sent = []
        self.expected = expected
        self.enough = asyncio.Event()

    async def send(self, message):
        self.sent.append(message)
        if len(self.sent) >= self.expected:
            self.enough.set()

    async def close(self, code, reason):
        self.enough.set()


class TestHubFormats(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.hub = EventHub()
        self.hub.attach(asyncio.get_running_loop())
        self.calls = []            # (thread name) of every decode
        real = bgen_server.decoded_frame_message

        def counting(channel, payload, ts):
            self.calls.append(threading.current_thread().name)
            return real(channel, payload, ts)

        patcher = mock.patch.object(bgen_server, "decoded_frame_message", counting)
        patcher.start()
        self.addCleanup(patcher.stop)

    async def deliver(self, formats, payload, channel="world"):
        """Subscribe one connection per format, publish ``payload`` from a thread named
        "publisher"; the message each connection got."""
        subscribers = [Subscriber(fmt, 16) for fmt in formats]
        sockets = [RecordingSocket() for _ in formats]
        for subscriber in subscribers:
            self.hub.subscribe(f"render:r1:{channel}", subscriber)
        pumps = [asyncio.create_task(s.pump(k)) for s, k in zip(subscribers, sockets)]
        try:
            publisher = threading.Thread(target=self.hub.publish_frame, args=("r1", channel, payload),
                                         name="publisher")
            publisher.start()
            await asyncio.to_thread(publisher.join, TIMEOUT)
            await asyncio.wait_for(asyncio.gather(*(k.enough.wait() for k in sockets)), TIMEOUT)
        finally:
            for pump in pumps:
                pump.cancel()
        return [k.sent[0] for k in sockets]

    async def test_each_connection_gets_its_format_decoded_once_on_the_publishing_thread(self):
        base64_msg, binary_msg, json_a, json_b = await self.deliver(("base64", "binary", "json", "json"),
                                                                    world_payload())
        self.assertEqual(self.calls, ["publisher"])
        self.assertIs(json_a, json_b)                       # one string shared by both
        frame = json.loads(json_a)
        self.assertEqual(frame["data"]["coords"], [1, -2, 3, 200, -300, 0])
        envelope = json.loads(base64_msg)
        self.assertEqual(base64.b64decode(envelope["payload_b64"]), world_payload())
        self.assertEqual(envelope["ts"], frame["ts"])       # the same frame, the same time stamp
        self.assertEqual(binary_msg, len(world_payload()).to_bytes(4, "little") + world_payload())

    async def test_without_a_json_connection_nothing_is_decoded(self):
        await self.deliver(("base64", "binary"), world_payload())
        self.assertEqual(self.calls, [])

    async def test_a_frame_that_does_not_decode_still_reaches_base64_and_binary_unchanged(self):
        payload = b"\x05not-a-world"
        base64_msg, binary_msg, json_msg = await self.deliver(("base64", "binary", "json"), payload)
        self.assertEqual(json.loads(json_msg)["type"], "frame_error")
        self.assertEqual(base64.b64decode(json.loads(base64_msg)["payload_b64"]), payload)
        self.assertEqual(binary_msg[4:], payload)


# ----------------------------------------------------------------------------- the benchmark

class TestRenderBench(unittest.TestCase):
    def test_frames_are_counted_across_any_split_of_the_stream(self):
        stream = b"".join(wire.frame(p) for p in (b"", b"abc", bytes(300), b"z"))
        for chunk in (1, 3, 4, 5, 7, len(stream)):
            with self.subTest(chunk=chunk):
                count = FrameCount()
                for at in range(0, len(stream), chunk):
                    count.feed(stream[at:at + chunk])
                self.assertEqual((count.frames, count.bytes), (4, len(stream)))
        count = FrameCount()
        count.feed(stream[:-1])
        self.assertEqual(count.frames, 3)        # the last frame is not whole yet

    def test_a_tiny_run_prints_every_figure(self):
        out = io.StringIO()
        with redirect_stdout(out):
            code = render_bench.main(["--size", "16", "--steps", "30", "--episodes", "1", "--repeat", "1"])
        text = out.getvalue()
        self.assertEqual(code, 0)
        for expected in ("world frame: terrain seed 0, size 16", "encode (wire.encode_world)",
                         "?format=json message (decode + JSON)", "agents frame:",
                         "standard: A* [50, 50, -20] -> [60, 60, -20], terrain seed 0",
                         "long flight: A* [50, 50, -20] -> [150, 150, -20], terrain seed 0", "ratio"):
            with self.subTest(expected=expected):
                self.assertIn(expected, text)
        self.assertNotIn("warning:", text)
        # agents: one at connect and one per step, on both agent ports; world and POV: timing-bound
        for workload in ("standard", "long flight"):
            with self.subTest(workload=workload):
                self.assertRegex(text, rf"frames received, {workload}, first round: world [1-9]\d*, "
                                       r"agents 31, pov_world_0 [1-9]\d*, pov_agents_0 31\n")


# ----------------------------------------------------------------------------- end to end

def lifted_start(world) -> tuple:
    """Where the server's episode starts: the scenario's start lifted above the terrain."""
    return tuple(float(v) for v in scenarios.place_above_obstacles(world, list(scenarios.TERRAIN_START)))


class TestRenderedRunEndToEnd(unittest.TestCase):
    """A rendered run of ``python bgen_server.py``: what reaches /ws/render decodes to what was sent.

    The rendered run waits in the queue (``--max-concurrent-runs 1`` behind a long run) while the
    test subscribes, so no frame is sent before the subscriptions exist.
    """

    SEED = 0
    MAX_STEPS = 100        # the drone is still within a metre or so of its start

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.server = ServerProcess("--port", "0", "--ws-port", "0", "--render-ports", "0", "--ws-proxy",
                                   "--max-concurrent-runs", "1", runs_dir=cls.tmp.name)
        try:
            cls.server.wait_listening()
            cls.received = asyncio.run(cls.rendered_run())
        except BaseException:
            cls.server.stop()
            cls.tmp.cleanup()
            raise
        vxs = load_backend("embedded")
        cls.world = wire.world_data(scenarios.terrain_world(vxs, cls.SEED))

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.tmp.cleanup()

    @classmethod
    async def rendered_run(cls) -> dict:
        port, ws_port = cls.server.port, cls.server.ws_port

        async def post(path, body=None):
            status, data, _ = await asyncio.to_thread(request, port, "POST", path, body)
            if status != 200:
                raise AssertionError(f"POST {path} answered {status}: {data}")
            return data

        blocker = await post("/run", LONG)
        run = await post("/run", {**QUICK, "render": True, "ws_proxy": True, "policy_code": STANDARD_POLICY,
                                  "episodes": 1, "seeds": [cls.SEED], "max_steps": cls.MAX_STEPS,
                                  "pov_min_dt_world": 0.05})
        if (blocker["status"], run["status"]) != ("running", "queued"):
            raise AssertionError(f"expects a running blocker and a queued rendered run: {blocker}, {run}")
        run_id = run["run_id"]
        streams = {"world": "?format=binary", "agents": "?format=binary", "pov_world_0": "?format=binary",
                   "world_json": "?format=json"}
        sockets = {}
        try:
            for name, query in streams.items():
                channel = name.removesuffix("_json")
                sockets[name] = await connect(f"ws://127.0.0.1:{ws_port}/ws/render/{run_id}/{channel}{query}",
                                              open_timeout=TIMEOUT, max_size=None)
                connected = json.loads(await asyncio.wait_for(sockets[name].recv(), TIMEOUT))
                if connected["type"] != "connected":
                    raise AssertionError(f"expects a connected message first, actual: {connected}")
            progress = await connect(f"ws://127.0.0.1:{ws_port}/ws/progress/{run_id}", open_timeout=TIMEOUT)
            sockets["progress"] = progress
            await post(f"/runs/{blocker['run_id']}/terminate")

            agents: list = []

            async def first(name):
                return await sockets[name].recv()

            async def all_agents():        # every agents frame until the run's stream ends
                while True:
                    agents.append(await sockets["agents"].recv())

            async def until_final():
                events = []
                while not events or events[-1]["type"] not in FINAL:
                    events.append(json.loads(await progress.recv()))
                return events

            collector = asyncio.create_task(all_agents())
            try:
                frames, events = await asyncio.wait_for(asyncio.gather(
                    asyncio.gather(*(first(n) for n in ("world", "pov_world_0", "world_json"))),
                    until_final()), TIMEOUT * 4)
            finally:
                collector.cancel()
        finally:
            for ws in sockets.values():
                await ws.close()
        warnings = [e["message"] for e in events if e["type"] == "warning"]
        return {"run_id": run_id, "world": frames[0], "pov_world_0": frames[1], "world_json": frames[2],
                "agents": agents, "events": events, "warnings": warnings}

    def steps(self) -> list[dict]:
        paths = list(Path(self.tmp.name, self.received["run_id"]).glob(f"**/steps.{self.SEED}.jsonl"))
        self.assertEqual(len(paths), 1, paths)
        return [json.loads(line) for line in paths[0].read_text().splitlines() if line.strip()]

    def assert_same_world(self, coords: np.ndarray, bits: np.ndarray):
        expected = self.world
        self.assertEqual(len(bits), len(expected.bits))
        self.assertGreater(len(bits), 100_000)
        by_coord = {tuple(c): int(b) for c, b in zip(coords.tolist(), bits.tolist())}
        sample = np.random.default_rng(1).choice(len(expected.bits), 500, replace=False)
        for index in sample:
            coord = tuple(int(v) for v in expected.coords[index])
            self.assertEqual(by_coord.get(coord), int(expected.bits[index]), coord)
        self.assertEqual(by_coord, expected.cells())

    def test_the_run_ran_rendered_without_warnings(self):
        self.assertEqual(self.received["warnings"], [])
        self.assertEqual(self.received["events"][-1]["type"], "done", self.received["events"][-1])

    def test_the_world_frame_decodes_to_the_scenario_world_of_the_seed(self):
        message = self.received["world"]
        self.assertIsInstance(message, bytes)
        self.assertEqual(int.from_bytes(message[:4], "little"), len(message) - 4)
        world = wire.decode_world(message[4:])
        self.assert_same_world(world.coords, world.bits)

    def test_a_json_subscriber_gets_the_same_world_decoded(self):
        frame = json.loads(self.received["world_json"])
        self.assertEqual((frame["type"], frame["channel"]), ("frame", "world"))
        data = frame["data"]
        self.assertEqual(data["count"], len(data["bits"]))
        self.assert_same_world(np.array(data["coords"]).reshape(-1, 3), np.array(data["bits"]))

    def test_agents_frames_decode_to_agent_0_where_the_run_logged_it(self):
        agents = self.received["agents"]
        self.assertGreater(len(agents), 0)
        start = lifted_start(scenarios.terrain_world(load_backend("embedded"), self.SEED))
        logged = [start] + [tuple(step["agent_pos"]) for step in self.steps()]
        at = 0
        for message in agents:
            decoded_agents = wire.decode_agents(message[4:])
            self.assertEqual(list(decoded_agents), [0])
            agent = decoded_agents[0]
            self.assertEqual(agent.id, 0)
            try:
                at = logged.index(agent.pos, at)
            except ValueError:
                self.fail(f"agent position {agent.pos} is not a position the run logged after "
                          f"{logged[at]} (frames arrive in step order)")
            self.assertLess(math.dist(agent.pos, start), 2.0, "agent 0 is near the start")

    def test_the_pov_frame_decodes_to_agent_0_with_the_default_camera(self):
        message = self.received["pov_world_0"]
        pov = wire.decode_pov(message[4:])
        self.assertEqual(pov.agent_id, 0)
        self.assertEqual(pov.proj, wire.ProjectionData())
        self.assertAlmostEqual(math.hypot(*pov.orientation), 1.0, places=9)


if __name__ == "__main__":
    unittest.main()
