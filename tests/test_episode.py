"""Specification of one episode (bgen.runner.episode), run in this process on the embedded backend.

The worker process and its limits are specified in test_worker.py; here the loop itself:
what reaches the policy, how intents are queued, how an episode ends and what it logs.
"""

import math
import socket
import threading
import unittest
from pathlib import Path

from bgen.errors import ConfigError
from bgen.runner import episode, taskspec
from bgen.runner.episode import (EpisodeConfig, ListSink, RenderLink, describe_error,
                                 error_line, run_episode)
from bgen.runner.metrics import EpisodeStats, clean_policy_log, is_teleport, max_step_distance
from bgen.runner.schema import REASONS, EpisodeSummary, StepLog
from bgen.sim import load_backend, scenarios
from tests.timing import scaled

POLICIES = Path(__file__).parent / "policies"
TIMEOUT_S = scaled(20.0)
# Start and target above the highest terrain and trees, so every seed has a free path.
SKY = {"start": (50, 50, -60), "target": (56, 56, -60)}
DEFAULTS = {"start": None, "target": None}   # the scenario's: the standard episode


def policy(name: str) -> str:
    return (POLICIES / name).read_text()


def run(name: str, seed: int = 0, source: str | None = None, **overrides):
    """Run one episode in-process; returns (outcome, sink)."""
    config = EpisodeConfig(**{"max_steps": 1500, "backend": "embedded", **SKY, **overrides})
    sink = ListSink()
    vxs = load_backend("embedded")
    outcome = run_episode(source if source is not None else policy(name), vxs, config, seed, sink)
    return outcome, sink


class EpisodeEndsTests(unittest.TestCase):
    """Why an episode ends, and what its summary says about it."""

    def test_a_policy_that_flies_to_the_target_succeeds(self):
        outcome, sink = run("move_to_target.py")
        summary = outcome.summary
        self.assertEqual(summary.reason, "success")
        self.assertTrue(summary.success)
        self.assertLess(summary.final_distance_to_target, 1.0)
        self.assertEqual(summary.steps, len(sink.steps))
        self.assertAlmostEqual(summary.time_to_goal, summary.steps * 0.01)
        self.assertEqual(summary.policy_summary, {"summary": f"steps={summary.steps} success=True"})
        self.assertIsNone(summary.error)

    def test_start_and_target_default_to_the_scenarios_lifted_above_the_terrain(self):
        from bgen.sim import scenarios
        world = scenarios.terrain_world(load_backend("embedded"), 0)
        start = scenarios.place_above_obstacles(world, (50, 50, -20))
        target = scenarios.place_above_obstacles(world, (60, 60, -20))
        self.assertNotEqual(start, (50, 50, -20))      # seed 0 puts it inside a hill
        outcome, sink = run("hover.py", max_steps=1, **DEFAULTS)
        self.assertEqual(sink.steps[0]["agent_coord"], start)
        self.assertEqual(outcome.summary.start, list(start))
        self.assertEqual(outcome.summary.target, [float(v) for v in target])

    def test_lifting_can_be_turned_off(self):
        outcome, sink = run("hover.py", max_steps=1, lift_above_terrain=False, **DEFAULTS)
        self.assertEqual(sink.steps[0]["agent_coord"], (50, 50, -20))
        self.assertEqual(outcome.summary.target, [60.0, 60.0, -20.0])

    def test_an_agent_that_never_arrives_ends_at_max_steps(self):
        outcome, sink = run("hover.py", max_steps=40)
        self.assertEqual(outcome.summary.reason, "max_steps")
        self.assertFalse(outcome.summary.success)
        self.assertEqual(len(sink.steps), 40)
        self.assertAlmostEqual(outcome.summary.sim_time_s, 0.4)
        self.assertEqual(outcome.summary.policy_summary, {"summary": "hovered 40 steps"})

    def test_an_exception_in_act_is_a_policy_error_with_the_policy_line(self):
        outcome, sink = run("raises_on_line_8.py")
        summary = outcome.summary
        self.assertEqual(summary.reason, "policy_error")
        self.assertEqual(summary.error, {"phase": "act", "type": "ZeroDivisionError",
                                         "message": "division by zero", "lineno": 8})
        self.assertEqual(summary.reasons, "act: ZeroDivisionError: division by zero (line 8)")
        self.assertEqual(len(sink.steps), 3)
        self.assertEqual(outcome.error["traceback"].splitlines(), [
            "Traceback (policy frames only):",
            "  line 8, in act",
            "    return 1 / 0",
            "ZeroDivisionError: division by zero",
        ])
        self.assertEqual(summary.policy_summary,
                         {"summary": "finalize still runs after a policy error"})

    def test_a_panic_raised_by_the_policy_in_act_is_a_policy_error(self):
        outcome, _ = run("panic_intent.py")
        self.assertEqual(outcome.summary.reason, "policy_error")
        self.assertEqual(outcome.summary.error["type"], "PanicException")
        self.assertEqual(outcome.summary.error["lineno"], 5)

    def test_a_recursion_bomb_is_a_policy_error(self):
        outcome, _ = run("recursion_bomb.py")
        self.assertEqual(outcome.summary.reason, "policy_error")
        self.assertEqual(outcome.summary.error["type"], "RecursionError")
        self.assertEqual(outcome.summary.error["lineno"], 2)

    def test_moving_the_agent_by_hand_is_a_teleport_never_a_success(self):
        outcome, sink = run("teleport.py")
        self.assertEqual(outcome.summary.reason, "teleport")
        self.assertFalse(outcome.summary.success)
        self.assertEqual(len(sink.steps), 0)
        self.assertEqual(outcome.summary.reasons,
                         "act() moved the agent from (50.00, 50.00, -60.00) to (56.00, 56.00, "
                         "-60.00): only the dynamics may move it, set_pos/set_hold_py must not "
                         "be used to move the agent; fly with ActionIntents")

    def test_any_move_made_by_a_policy_call_is_a_teleport_however_small(self):
        # 0.004 m per step is 0.4 m/s, far below the speed bound: the position itself is checked.
        nudge = ("    x, y, z = agent.get_pos()\n"
                 "    agent.set_pos([x + 0.004, y, z])\n")
        cases = {
            "act": ("def act(t, agent, world, fw, env, helpers):\n" + nudge
                    + "    return None\ndef collect(c):\n    return {}\n", 0),
            "collect": ("held = []\ndef act(t, agent, world, fw, env, helpers):\n"
                        "    held.append(agent)\n    return None\n"
                        "def collect(c):\n    agent = held[0]\n" + nudge + "    return {}\n", 1),
            "set_hold_py": ("def act(t, agent, world, fw, env, helpers):\n"
                            "    x, y, z = agent.get_coord_py()\n"
                            "    agent.set_hold_py([x + 1, y, z], 0.0)\n"
                            "    return None\ndef collect(c):\n    return {}\n", 0),
        }
        for phase, (source, steps) in cases.items():
            with self.subTest(phase=phase):
                source += "def finalize(e):\n    return {}\n"
                outcome, sink = run("", source=source, max_steps=3)
                self.assertEqual(outcome.summary.reason, "teleport")
                self.assertFalse(outcome.summary.success)
                self.assertEqual(len(sink.steps), steps)
                self.assertTrue(outcome.summary.reasons.startswith(
                    f"{'act' if phase == 'set_hold_py' else phase}() moved the agent from"))

    def test_a_panic_in_the_simulator_step_is_a_sim_error_not_the_policys(self):
        vxs = load_backend("embedded")
        config = EpisodeConfig(max_steps=50, backend="embedded", **SKY)
        sim = episode.build_sim(vxs, config, 0)
        sim.dynamics = _PanickingDynamics(vxs.PanicException)
        outcome = run_episode(policy("move_to_target.py"), vxs, config, 0, ListSink(), sim=sim)
        self.assertEqual(outcome.summary.reason, "sim_error")
        self.assertEqual(outcome.summary.error, {
            "phase": "sim", "type": "PanicException", "message": "index out of bounds",
            "lineno": None})

    def test_a_broken_act_result_is_a_policy_error_naming_the_contract(self):
        source = policy("hover.py").replace("return None", "return 'up'", 1)
        outcome, _ = run("", source=source)
        self.assertEqual(outcome.summary.reason, "policy_error")
        self.assertEqual(outcome.summary.error["message"],
                         "act() must return an ActionIntent, (intent, 'Replace'|'Push') or None;"
                         " actual: str")

    def test_load_failures_are_policy_errors_with_the_line(self):
        cases = [
            ("syntax_error.py", 5, "syntax"),
            ("missing_act.py", None, "contract"),
            ("spawn_process.py", 1, "import"),
        ]
        for name, lineno, rule in cases:
            with self.subTest(policy=name):
                outcome, sink = run(name)
                self.assertEqual(outcome.summary.reason, "policy_error")
                self.assertEqual(outcome.summary.error["phase"], "load")
                self.assertEqual(outcome.summary.error["lineno"], lineno)
                self.assertIn(f"(rule: {rule})", outcome.summary.error["message"])
                self.assertEqual(sink.steps, [])


class TaskSpecTests(unittest.TestCase):
    """The task spec decides when an episode ends and grades it from the flight alone."""

    def test_the_default_spec_is_reaching_the_target_and_its_one_check_is_reported(self):
        outcome, _ = run("move_to_target.py")
        summary = outcome.summary
        self.assertEqual(summary.reasons, f"reached the target at step {summary.steps - 1}")
        self.assertEqual(summary.score, 1.0)
        self.assertEqual([(c["kind"], c["passed"], c["score"]) for c in summary.checks],
                         [("reach", True, 1.0)])
        self.assertEqual(summary.checks[0]["account"],
                         f"reach: within 1 m of target [56, 56, -60] at step {summary.steps - 1}")

    def test_a_policy_claiming_success_in_collect_and_finalize_changes_nothing(self):
        for spec in (None, {"checks": [{"kind": "end_near", "point": "target"}]}):
            with self.subTest(spec=spec):
                claims, sink = run("claims_success.py", max_steps=200, task_spec=spec)
                honest, _ = run("hover.py", max_steps=200, task_spec=spec)
                self.assertEqual(sink.steps[-1]["policy_log"]["success"], "true")
                self.assertEqual(claims.summary.policy_summary["success"], "true")
                for name in ("success", "reason", "steps", "checks", "score", "reasons"):
                    self.assertEqual(getattr(claims.summary, name), getattr(honest.summary, name),
                                     name)
                self.assertFalse(claims.summary.success)
                self.assertEqual(claims.summary.reason, "max_steps")
                self.assertFalse(claims.summary.checks[0]["passed"])

    def test_a_spec_that_holds_ends_the_episode_and_says_so(self):
        spec = {"checks": [{"kind": "altitude", "max_z": -50},
                           {"kind": "end_near", "point": "start"}]}
        outcome, sink = run("hover.py", task_spec=spec)
        self.assertEqual((outcome.summary.reason, outcome.summary.steps), ("success", 1))
        self.assertEqual(outcome.summary.reasons, "every check held at step 0")

    def test_a_spec_not_met_names_what_was_missed(self):
        spec = {"checks": [{"kind": "visit", "points": [{"from": "start", "offset": [0, 4, 0]}]}]}
        outcome, _ = run("hover.py", max_steps=50, task_spec=spec)
        self.assertEqual(outcome.summary.reasons, "ran 50 steps; visit: 0/1 points; missed "
                                                  "[50, 54, -60] (point 0) by 4.0 m")

    def test_a_bad_spec_is_a_config_error_naming_the_field(self):
        with self.assertRaises(ConfigError) as caught:
            EpisodeConfig(task_spec={"checks": [{"kind": "reach", "point": "turbine_0"}]})
        self.assertEqual(caught.exception.field, "task_spec.checks[0].point")
        EpisodeConfig(scenario="wind_farm",
                      task_spec={"checks": [{"kind": "reach", "point": "turbine_0"}]})


class LiftTests(unittest.TestCase):
    def test_a_point_on_a_cell_face_is_in_the_cell_the_agent_would_name(self):
        self.assertEqual(episode.cell_of([60.5, 61.5, -20.5]), [61, 62, -21])
        self.assertEqual(episode.cell_of([0.49999999999999994, -0.5, 3]), [0, -1, 3])
        vxs = load_backend("embedded")
        world = vxs.VoxelGrid.from_dict_py({(62, 60, z): vxs.Cell.filled() for z in range(-9, 1)})
        # 60.5 is in cell 61, whose 3 x 3 column holds the tower at x = 62: lifted over it.
        _, target = episode.lift_above_terrain(world, (50, 50, -5), (60.5, 60.0, -5.0))
        self.assertEqual(target[:2], (61.0, 60.0))
        self.assertLess(target[2], -9)
        start, _ = episode.lift_above_terrain(world, (60.5, 60.0, -5.0), (50, 50, -5))
        self.assertEqual(start[:2], (61, 60))
        self.assertLess(start[2], -9)


class QueueModeTests(unittest.TestCase):
    """An intent replaces the current action unless act() says "Push"."""

    def test_push_queues_behind_and_replace_discards_the_current_action(self):
        # Forward x5 at step 0, then Right x5 at step 1: queued, the flight ends 5 forward and
        # 5 right of the start; replacing, only 5 right.
        for mode, end in (("Push", (55, 55)), ("Replace", (50, 55))):
            with self.subTest(mode=mode):
                source = policy("queue_mode.py").replace('MODE = "Push"', f'MODE = "{mode}"')
                outcome, sink = run("", source=source, target=(0, 0, -60), max_steps=800)
                self.assertEqual(outcome.summary.reason, "max_steps")
                self.assertEqual(sink.steps[-1]["command_len"], 0)      # the flight is over
                x, y, _ = sink.steps[-1]["agent_pos"]
                self.assertLess(math.dist((x, y), end), 1.5, (x, y))


class StepLogTests(unittest.TestCase):
    """What each step reports."""

    def test_each_step_has_the_steplog_fields_and_simulated_time(self):
        _, sink = run("hover.py", max_steps=3)
        self.assertEqual([s["step"] for s in sink.steps], [0, 1, 2])
        self.assertEqual([s["t"] for s in sink.steps], [0.0, 0.01, 0.02])
        self.assertEqual(set(sink.steps[0]), {f for f in StepLog.__dataclass_fields__})
        self.assertEqual(sink.steps[1]["policy_log"], {"t": "0.01"})
        self.assertEqual(sink.phases, ["setup", "load", "running"])

    def test_a_failing_collect_is_logged_and_the_episode_goes_on(self):
        outcome, sink = run("collect_fails.py")
        self.assertEqual(outcome.summary.reason, "success")
        self.assertEqual(sink.steps[0]["policy_log"],
                         {"collect_error": "collect: ZeroDivisionError: division by zero (line 18)"})
        self.assertIn("collect() failed: collect: ZeroDivisionError: division by zero (line 18)",
                      sink.warnings)
        self.assertIn("finalize() failed: finalize: ValueError: finalize fails too (line 22)",
                      sink.warnings)
        self.assertEqual(outcome.summary.policy_summary, {})

    def test_the_same_seed_gives_the_same_flight(self):
        first = [s["agent_pos"] for s in run("move_to_target.py", seed=3, **DEFAULTS)[1].steps]
        second = [s["agent_pos"] for s in run("move_to_target.py", seed=3, **DEFAULTS)[1].steps]
        self.assertGreater(len(first), 100)
        self.assertEqual(first, second)


class RenderingTests(unittest.TestCase):
    """POV / world / agents cadence, and a renderer that is not there."""

    def test_a_renderer_that_is_not_listening_means_headless_with_a_warning(self):
        with socket.socket() as probe:     # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        outcome, sink = run("move_to_target.py", render=True,
                            render_ports=(port, port, port, port))
        self.assertEqual(outcome.summary.reason, "success")
        self.assertEqual(len(sink.warnings), 1)
        self.assertTrue(sink.warnings[0].startswith(f"renderer not reachable at 127.0.0.1:{port}"))
        self.assertTrue(sink.warnings[0].endswith("continuing headless"))

    def test_a_listening_renderer_gets_the_world_agents_every_step_and_povs(self):
        listeners = [_FrameCounter() for _ in range(4)]   # world, agents, pov, pov agents
        try:
            outcome, sink = run("hover.py", max_steps=30, render=True,
                                render_ports=tuple(l.port for l in listeners))
        finally:
            counts = [l.finish() for l in listeners]
        self.assertEqual(sink.warnings, [])
        self.assertEqual(outcome.summary.reason, "max_steps")
        world, agents, povs, _ = counts
        self.assertGreaterEqual(world, 1)     # at the start, then once per second of wall time
        self.assertEqual(agents, 1 + 30)      # at the start, then every step
        # The first step sends a POV; later ones only once the vision update has finished
        # (the cadence itself is specified with fakes below).
        self.assertGreaterEqual(povs, 1)

    def test_pov_waits_for_the_filter_world_and_for_simulated_time(self):
        link, fw, client, clock = _fake_link(pov_min_dt_world=0.05)
        link.step(0.0)                  # first step: POV
        link.step(0.01)                 # too soon in simulated time
        fw.updating = True
        link.step(0.06)                 # vision update still running
        fw.updating = False
        link.step(0.07)                 # idle and 0.07 s after the last POV
        self.assertEqual(fw.povs, [0.0, 0.07])
        self.assertEqual(client.agents_sent, 4)

    def test_an_overdue_view_is_awaited_before_the_simulation_runs_further_ahead(self):
        link, fw, client, clock = _fake_link(pov_min_dt_world=0.05)
        link.step(0.0)
        fw.updating = True
        link.step(0.2)                  # 4 POV periods behind: one look, no waiting
        self.assertEqual(fw.waits, 1)
        fw.finish_after = 3             # the update finishes after three more polls
        link.step(0.26)                 # over 5 periods behind: wait for the view, send the next
        self.assertEqual(fw.waits, 1 + 3)
        self.assertEqual(fw.povs, [0.0, 0.26])

    def test_waiting_for_a_view_is_bounded_in_wall_time(self):
        link, fw, client, clock = _fake_link(pov_min_dt_world=0.05)
        clock.step = 0.5                # every clock read advances wall time by 0.5 s
        link.step(0.0)
        fw.updating = True
        link.step(1.0)                  # the view never finishes: give up after the limit
        self.assertEqual(fw.povs, [0.0])
        self.assertLessEqual(fw.waits, episode.POV_WAIT_LIMIT_S / clock.step + 2)

    def test_a_rendered_episode_sends_a_view_at_least_every_five_pov_periods(self):
        listeners = [_FrameCounter() for _ in range(4)]
        try:
            outcome, sink = run("hover.py", max_steps=300, render=True, pov_min_dt_world=0.05,
                                render_ports=tuple(l.port for l in listeners))
        finally:
            counts = [l.finish() for l in listeners]
        self.assertEqual(outcome.summary.reason, "max_steps")
        povs = counts[2]
        self.assertGreaterEqual(povs, 300 * 0.01 / (episode.POV_MAX_LAG_PERIODS * 0.05) - 1)

    def test_the_world_is_resent_every_second_of_wall_time(self):
        link, fw, client, clock = _fake_link(pov_min_dt_world=0.05)
        for now in (0.2, 0.9, 1.1, 1.5, 2.2):
            clock.now = now
            link.step(now)
        self.assertEqual(client.worlds_sent, 2)


class _PanickingDynamics:
    def __init__(self, panic):
        self.panic = panic

    def update_agent_dynamics_py(self, agent, env, target, delta):
        raise self.panic("index out of bounds")


class _FrameCounter:
    """A renderer port: accepts one connection, counts ``[u32 length][payload]`` frames."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(TIMEOUT_S)
        self.port = self.server.getsockname()[1]
        self.data = bytearray()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(TIMEOUT_S)
            while chunk := conn.recv(1 << 16):
                self.data += chunk

    def finish(self) -> int:
        import gc
        gc.collect()                   # drops the episode's client, closing its sockets
        self.thread.join(TIMEOUT_S)
        self.server.close()
        frames, offset = 0, 0
        while offset + 4 <= len(self.data):
            offset += 4 + int.from_bytes(self.data[offset:offset + 4], "little")
            frames += 1
        return frames


class _FakeFW:
    def __init__(self):
        self.updating = False
        self.povs = []
        self.pending_stamp = None
        self.finish_after = None    # polls of is_updating_py until a running update finishes
        self.waits = 0              # polls answered "still updating"

    def is_updating_py(self, stamp):
        if self.updating and self.finish_after is not None:
            if self.finish_after == 0:
                self.updating, self.finish_after = False, None
            else:
                self.finish_after -= 1
        self.waits += self.updating
        return self.updating

    def send_pov_py(self, client, stream, agent_id, proj, cam):
        self.povs.append(None)


class _FakeVision:
    def __init__(self, fw):
        self.fw = fw

    def update_filter_world_py(self, view, proj, fw, dynamic, stamp, callback):
        fw.povs[-1] = stamp


class _FakeClient:
    def __init__(self):
        self.worlds_sent = 0
        self.agents_sent = 0

    def send_world_py(self, world):
        self.worlds_sent += 1

    def send_agents_py(self, agents):
        self.agents_sent += 1


class _FakeAgent:
    def camera_view_py(self, cam):
        return None


class _Clock:
    now = 0.0
    step = 0.0      # wall time that passes at every read

    def __call__(self):
        self.now += self.step
        return self.now


def _fake_link(pov_min_dt_world):
    fw, client, clock = _FakeFW(), _FakeClient(), _Clock()
    sim = episode.Sim(vxs=None, world=object(), agent=_FakeAgent(), fw=fw, env=None, chaser=None,
                      dynamics=None, start=(0, 0, 0), target=(0.0, 0.0, 0.0), rng=None,
                      vision=_FakeVision(fw))
    return RenderLink(client, sim, pov_min_dt_world, clock=clock), fw, client, clock


class ErrorReportTests(unittest.TestCase):
    """Errors shown to the LLM: policy frames only, with the policy's line."""

    def test_describe_error_keeps_only_policy_frames(self):
        source = "def act():\n    helper()\n\ndef helper():\n    raise KeyError('x')\n"
        namespace = {}
        exec(compile(source, "policy.py", "exec"), namespace)
        try:
            namespace["act"]()
        except KeyError as error:
            described = describe_error(error, "act", source, filename="policy.py")
        self.assertEqual(described["lineno"], 5)
        self.assertEqual(described["type"], "KeyError")
        self.assertEqual(described["traceback"].splitlines(), [
            "Traceback (policy frames only):",
            "  line 2, in act", "    helper()",
            "  line 5, in helper", "    raise KeyError('x')",
            "KeyError: 'x'"])
        self.assertEqual(error_line(described), "act: KeyError: 'x' (line 5)")

    def test_describing_an_error_runs_no_policy_code_and_caps_the_message(self):
        # describe_error runs after the policy's budget: str() of a Counter subclass would
        # call the policy's most_common().
        import collections

        class Endless(collections.Counter):
            def most_common(self, n=None):
                raise AssertionError("policy code ran")

        self.assertEqual(describe_error(ValueError(Endless("ab")), "act")["message"],
                         "<Endless object>")
        self.assertEqual(describe_error(ValueError("m" * 5000), "act")["message"],
                         "m" * 2000 + "...[3000 more characters]")


class ConfigTests(unittest.TestCase):
    def test_invalid_settings_are_refused_with_the_field_named(self):
        cases = [
            ({"max_steps": 0}, "max_steps: expects an integer in (0, 1000000], actual: 0"),
            ({"delta": 1e-308}, "delta: expects a number in [0.0001, 1], actual: 1e-308"),
            ({"max_steps": 10**23},
             "max_steps: expects an integer in (0, 1000000], actual: 100000000000000000000000"),
            ({"delta": -0.1}, "delta: expects a number in [0.0001, 1], actual: -0.1"),
            ({"scenario": "moon"}, "scenario: expects one of terrain, wind_farm, actual: 'moon'"),
            ({"target": (1, 2)}, "target: expects 3 numbers within +-1000000, actual: (1, 2)"),
            ({"act_budget_s": math.inf}, "act_budget_s: expects a number in (0, 3600], actual: inf"),
            ({"memory_limit_mb": 1.5},
             "memory_limit_mb: expects an integer in [256, 1048576], actual: 1.5"),
            # past these bounds a setting overflows what it reaches (time_t, int conversion)
            ({"target": (1e308, 0, 0)}, "target: expects 3 numbers within +-1000000, actual: "
                                        "(1e+308, 0, 0)"),
            ({"start": (0, 2e6, 0)}, "start: expects 3 numbers within +-1000000, actual: "
                                     "(0, 2000000.0, 0)"),
            ({"act_budget_s": 1e308}, "act_budget_s: expects a number in (0, 3600], actual: 1e+308"),
            ({"episode_deadline_s": 1e9},
             "episode_deadline_s: expects a number in (0, 2592000], actual: 1000000000.0"),
            ({"memory_limit_mb": 1},     # too little to parse a policy: not a "nesting" error
             "memory_limit_mb: expects an integer in [256, 1048576], actual: 1"),
            ({"render_ports": (1, 2)}, "render_ports: expects 4 numbers, actual: (1, 2)"),
        ]
        for overrides, message in cases:
            with self.subTest(**{k: repr(v) for k, v in overrides.items()}):
                with self.assertRaises(ConfigError) as caught:
                    EpisodeConfig(**overrides)
                self.assertEqual(caught.exception.message, message)


class InitConfigTests(unittest.TestCase):
    """What init(config) receives."""

    RECORDER = (
        "import voxelsim as vxs\n"
        "SEEN = {}\n"
        "def init(config):\n"
        "    SEEN['target'] = config['target']\n"
        "def act(t, agent, world, fw, env, helpers):\n"
        "    return helpers.plan_to(world, agent.get_coord_py(), SEEN['target'], 0.8, 0.0)\n"
        "def collect(step_ctx):\n"
        "    return {'target': repr(SEEN['target'])}\n"
        "def finalize(ep_ctx):\n"
        "    return {'summary': 'ok'}\n")

    def test_a_whole_number_target_arrives_as_ints_that_plan_to_accepts(self):
        outcome, sink = run("", source=self.RECORDER, max_steps=3, target=(56.0, 56.0, -60.0))
        self.assertIsNone(outcome.summary.error)
        self.assertEqual(sink.steps[0]["policy_log"], {"target": "[56, 56, -60]"})

    def test_config_start_is_the_cell_the_agent_starts_in_even_when_lifted(self):
        """The prompt says config['start'] is the cell the agent starts in, after lifting."""
        source = self.RECORDER.replace("    SEEN['target'] = config['target']\n",
                                       "    SEEN['target'] = config['target']\n"
                                       "    SEEN['start'] = config['start']\n").replace(
            "    return {'target': repr(SEEN['target'])}\n",
            "    return {'start': repr(SEEN['start'])}\n")
        for overrides in ({}, DEFAULTS):       # the sky, and the terrain start that is lifted
            with self.subTest(overrides=overrides):
                outcome, sink = run("", source=source, max_steps=2, **overrides)
                self.assertIsNone(outcome.summary.error)
                self.assertEqual(sink.steps[0]["policy_log"]["start"],
                                 repr(list(sink.steps[0]["agent_coord"])))
                self.assertEqual(sink.steps[0]["policy_log"]["start"],
                                 repr([int(v) for v in outcome.summary.start]))

    def test_config_landmarks_are_the_points_the_task_spec_resolves_in_this_episode(self):
        source = self.RECORDER.replace("    SEEN['target'] = config['target']\n",
                                       "    SEEN['target'] = config['target']\n"
                                       "    SEEN['marks'] = config['landmarks']\n").replace(
            "    return {'target': repr(SEEN['target'])}\n",
            "    return {'marks': repr(sorted(SEEN['marks'].items()))}\n")
        outcome, sink = run("", source=source, max_steps=2, scenario="wind_farm", **DEFAULTS)
        self.assertIsNone(outcome.summary.error, outcome.summary)
        config = EpisodeConfig(max_steps=2, backend="embedded", scenario="wind_farm", **DEFAULTS)
        sim = episode.build_sim(load_backend("embedded"), config, 0)
        resolved = episode.episode_spec(config, sim)
        expected = {name: episode.as_coordinate(point) for name, point in
                    taskspec.episode_landmarks(sim.start, sim.target,
                                               scenarios.scenario_landmarks("wind_farm")).items()}
        self.assertEqual(sink.steps[0]["policy_log"]["marks"], repr(sorted(expected.items())))
        self.assertEqual(set(expected), {"start", "target", "turbine_0", "turbine_1", "turbine_2",
                                         "defect"})
        self.assertEqual(expected["target"], [int(v) for v in resolved.checks[0].points["point"]])

    def test_a_fractional_target_keeps_its_fraction(self):
        self.assertEqual(episode.as_coordinate((60.5, 60.0, -20.0)), [60.5, 60.0, -20.0])
        self.assertEqual(episode.as_coordinate((60.0, 60, -20.0)), [60, 60, -20])


class MetricsTests(unittest.TestCase):
    def test_a_step_longer_than_max_speed_times_delta_is_a_teleport(self):
        self.assertAlmostEqual(max_step_distance(0.01, 50.0), 0.5, places=5)
        cases = [((0, 0, 0), (0.4, 0, 0), False), ((0, 0, 0), (0.6, 0, 0), True),
                 ((0, 0, 0), (math.nan, 0, 0), True)]
        for before, after, expected in cases:
            with self.subTest(after=after):
                self.assertEqual(is_teleport(before, after, 0.01, 50.0), expected)

    def test_running_totals(self):
        stats = EpisodeStats()
        stats.add_step(0.5, 1, 4, 3.0)
        stats.add_step(0.25, 0, 2, 2.0)
        self.assertEqual((stats.steps, stats.collisions_total, stats.avg_command_len,
                          stats.path_len, stats.min_distance), (2, 1, 3.0, 0.75, 2.0))
        self.assertEqual(EpisodeStats.from_dict(stats.to_dict()), stats)

    def test_policy_logs_are_clipped(self):
        log = clean_policy_log({f"k{i}": "v" * 1000 for i in range(40)})
        self.assertEqual(len(log), 33)
        self.assertEqual(len(log["k0"]), 512)
        self.assertEqual(log["_truncated"], "8 more keys dropped")


class SchemaTests(unittest.TestCase):
    def _summary(self, **changes):
        base = EpisodeSummary(success=True, steps=3, collisions_total=0, avg_command_len=1.0,
                              path_len_est=2.0, coverage=None, time_to_goal=0.03, reasons=None,
                              policy_summary={"summary": "ok"}, reason="success").to_dict()
        base.update(changes)
        return base

    def test_a_summary_survives_a_round_trip(self):
        data = self._summary()
        self.assertEqual(EpisodeSummary.from_dict(data).to_dict(), data)
        graded = self._summary(score=0.5, checks=[
            {"kind": "reach", "passed": False, "score": 0.5, "account": "reach: closest 2.0 m"}])
        self.assertEqual(EpisodeSummary.from_dict(graded).to_dict(), graded)

    def test_mistyped_summaries_are_refused_with_the_field_named(self):
        cases = [
            ({"steps": "3"}, "summary.steps: expects an integer, actual: str"),
            ({"success": 1}, "summary.success: expects a boolean, actual: int"),
            ({"reason": "won"}, "summary.reason: expects one of " + ", ".join(REASONS) +
             ", actual: 'won'"),
            ({"policy_summary": {"a": 1}}, "summary.policy_summary: expects an object of strings,"
                                           " actual: dict"),
            ({"checks": [{"kind": "reach", "passed": "yes", "score": 1, "account": "x"}]},
             "summary.checks: expects a list of {kind, passed, score, account} or null, "
             "actual: list"),
            ({"score": "1.0"}, "summary.score: expects a number or null, actual: str"),
        ]
        for changes, message in cases:
            with self.subTest(changes=changes):
                with self.assertRaises(ValueError) as caught:
                    EpisodeSummary.from_dict(self._summary(**changes))
                self.assertEqual(str(caught.exception), message)


if __name__ == "__main__":
    unittest.main()
