"""Specification of flight: FixedLookaheadChaser + QuadDynamics flying an agent's actions.

The loop is the reference runner's: while the agent has an action, one chaser step and one
dynamics step of ``DELTA`` per iteration. Runs on whichever backend ``load_backend()``
returns; only the public API is used (speed comes from successive ``get_pos()``).
``EmbeddedOnly...`` classes test internals of the embedded backend.

Cruise speed. voxelsim's chaser aims ``2 u`` metres ahead of the agent's projection on the
path with ``u`` m/s feed-forward (u = urgency), and the moving velocity gain is 2.4 against
quadratic drag 0.1 (unit mass), so the steady speed solves ``2.4 (3u - v) = 0.1 v²``:
1.42 m/s at u = 0.5, 2.70 at u = 1, 4.97 at u = 2. The ``20 u`` of ``v_max_base`` only caps
how fast progress may run ahead. Measured over the middle third of a straight 30-cell flight
the speed sits within a few per cent of that (the projection trails the agent a little and
the vertical loop dips while accelerating); the tolerance is 15 %.
"""

import contextlib
import io
import math
import unittest

from bgen.sim import backend_label, load_backend

vxs = load_backend()
EMBEDDED = backend_label(vxs) == "embedded"
embedded_only = unittest.skipUnless(EMBEDDED, "internals of the embedded backend")

F, R, U = vxs.MoveDir.Forward, vxs.MoveDir.Right, vxs.MoveDir.Up
DELTA = 0.01
MAX_STEPS = 4000  # 40 s of simulated time: every flight here ends well before
START = (50, 50, -20)


def cruise_speed(urgency):
    """Root of 0.1 v² + 2.4 v - 7.2 u = 0 (see the module docstring)."""
    return (-2.4 + math.sqrt(2.4 ** 2 + 4 * 0.1 * 7.2 * urgency)) / 0.2


class Flight:
    """An agent, a chaser and quad dynamics, stepped like the reference runner."""

    def __init__(self, start=START):
        self.agent = vxs.Agent(0)
        self.agent.set_hold_py(list(start), 0.0)
        self.chaser = vxs.FixedLookaheadChaser.default_py()
        self.dynamics = vxs.QuadDynamics(vxs.QuadParams.default_py())
        self.env = vxs.EnvState.default_py()
        self.positions = [self.agent.get_pos()]

    def step(self):
        target = self.chaser.step_chase_py(self.agent, DELTA)
        self.dynamics.update_agent_dynamics_py(self.agent, self.env, target, DELTA)
        self.positions.append(self.agent.get_pos())

    def fly(self, *intents, on_step=None):
        """Perform the intents (queued in order); step while there is an action."""
        self.agent.perform_oneshot_py(intents[0])
        for extra in intents[1:]:
            self.agent.push_back_intent_py(extra)
        for _ in range(MAX_STEPS):
            if self.agent.get_action_py() is None:
                return len(self.positions) - 1
            self.step()
            if on_step is not None:
                on_step(self.agent)
        raise AssertionError(f"the action did not complete in {MAX_STEPS} steps")


def distance(a, b):
    return math.dist(a, b)


def speed_at(positions, i):
    return distance(positions[i], positions[i - 1]) / DELTA


class TestFlyingToTheEndCell(unittest.TestCase):
    def test_an_intent_is_flown_to_its_end_cell_and_then_held(self):
        flight = Flight()
        moves = [F] * 6 + [R] * 4 + [U] * 2
        steps = flight.fly(vxs.ActionIntent(1.0, 0.0, moves))
        end = (56, 54, -22)
        self.assertIsNone(flight.agent.get_action_py())
        # Completion comes when the progress (which may lead the agent while the agent is
        # within 1.0 of the path) reaches the end: the agent is then about a cell from it.
        self.assertLess(distance(flight.agent.get_pos(), end), 1.5)
        self.assertLess(steps * DELTA, 12.0)  # 12 cells of path at about 2.7 m/s
        # Holding, the runner steps nothing more, so the agent stays where it stopped.
        self.assertEqual(flight.agent.get_action_py(), None)

    def test_after_completion_the_dynamics_brake_near_the_end_cell(self):
        flight = Flight()
        flight.fly(vxs.ActionIntent(1.0, 0.0, [F] * 8))
        for _ in range(400):  # 4 s of hold steps, as a loop that always steps would do
            flight.step()
        self.assertIsNone(flight.agent.get_action_py())
        self.assertLess(speed_at(flight.positions, len(flight.positions) - 1), 0.5)
        self.assertLess(distance(flight.agent.get_pos(), (58, 50, -20)), 3.0)

    def test_a_holding_agent_at_rest_stays_put(self):
        flight = Flight()
        for _ in range(200):
            flight.step()
        self.assertLess(distance(flight.agent.get_pos(), START), 1e-6)

    def test_cruise_speed_follows_the_lookahead_model_not_twenty_times_urgency(self):
        for urgency in (0.5, 1.0, 2.0):
            with self.subTest(urgency=urgency):
                flight = Flight()
                flight.fly(vxs.ActionIntent(urgency, 0.0, [F] * 30))
                xs = [p[0] - START[0] for p in flight.positions]
                first = next(i for i, x in enumerate(xs) if x >= 10.0)
                last = next(i for i, x in enumerate(xs) if x >= 20.0)
                speed = (xs[last] - xs[first]) / ((last - first) * DELTA)
                expected = cruise_speed(urgency)
                self.assertLess(abs(speed - expected) / expected, 0.15,
                                f"measured {speed:.2f} m/s, model {expected:.2f} m/s")
                self.assertLess(speed, 5.0 * urgency)

    def test_queued_intents_are_dropped_as_the_flight_passes_them(self):
        flight = Flight()
        seen = []

        def record(agent):
            action = agent.get_action_py()
            if action is not None:
                seen.append((action.intent_count(), action.get_origin()))

        flight.fly(vxs.ActionIntent(1.0, 0.0, [F] * 4), vxs.ActionIntent(1.0, 0.0, [R] * 4),
                   vxs.ActionIntent(1.0, 0.0, [F] * 4), on_step=record)
        self.assertEqual(seen[0], (3, START))
        # Entering the third intent drops the first (voxelsim keeps one behind).
        self.assertIn((2, (54, 50, -20)), seen)
        self.assertLess(distance(flight.agent.get_pos(), (58, 54, -20)), 1.0)


class TestChaser(unittest.TestCase):
    def test_a_chaser_step_changes_nothing_in_the_agent(self):
        agent = vxs.Agent(0)
        agent.set_hold_py([1, 2, 3], 0.0)
        agent.perform_oneshot_py(vxs.ActionIntent(1.0, 0.0, [F, F, R]))
        agent.set_pos([1.3, 2.1, 3.0])
        before = (agent.get_pos(), agent.get_action_py().get_intent_queue()[0].len())
        target = vxs.FixedLookaheadChaser.default_py().step_chase_py(agent, DELTA)
        self.assertIsInstance(target, vxs.ChaseTarget)
        self.assertEqual((agent.get_pos(), agent.get_action_py().get_intent_queue()[0].len()),
                         before)

    def test_an_action_without_cells_is_never_completed(self):
        flight = Flight()
        flight.agent.perform_oneshot_py(vxs.ActionIntent(1.0, 0.0, [vxs.MoveDir.undecided()]))
        for _ in range(100):
            flight.step()
        self.assertIsNotNone(flight.agent.get_action_py())
        self.assertLess(distance(flight.agent.get_pos(), START), 1e-6)

    def test_arguments_are_converted_as_pyo3_does(self):
        agent = vxs.Agent(0)
        chaser = vxs.FixedLookaheadChaser.default_py()
        dynamics = vxs.QuadDynamics(vxs.QuadParams.default_py())
        env = vxs.EnvState.default_py()
        target = chaser.step_chase_py(agent, 1)  # an int delta is a float to PyO3
        cases = (
            (lambda: chaser.step_chase_py(agent, "fast"), TypeError,
             "argument 'delta': must be real number, not str"),
            (lambda: chaser.step_chase_py("agent", DELTA), TypeError,
             "argument 'agent': 'str' object cannot be converted to 'Agent'"),
            (lambda: dynamics.update_agent_dynamics_py(agent, env, None, DELTA), TypeError,
             "argument 'chaser': 'NoneType' object cannot be converted to 'ChaseTarget'"),
            (lambda: dynamics.update_agent_dynamics_py(agent, 0, target, DELTA), TypeError,
             "argument 'env': 'int' object cannot be converted to 'EnvState'"),
            (lambda: vxs.QuadDynamics("quad"), TypeError,
             "argument 'params': 'str' object cannot be converted to 'QuadParams'"),
        )
        for call, error, message in cases:
            with self.subTest(message=message):
                with self.assertRaises(error) as caught:
                    call()
                self.assertEqual(str(caught.exception), message)


@embedded_only
class EmbeddedOnlyDynamics(unittest.TestCase):
    def test_px4_is_absent_so_callers_fall_back_to_quad_dynamics(self):
        self.assertFalse(hasattr(vxs, "px4"))

    def test_the_drone_turns_towards_the_intent_yaw_ever_more_slowly(self):
        # voxelsim's yaw set-point gain falls with the square of the error below 0.4 rad.
        flight = Flight()
        headings = []

        def record(agent):
            w, x, y, z = agent._attitude
            headings.append(math.atan2(2 * (x * y + w * z), 1 - 2 * (y * y + z * z)))

        flight.fly(vxs.ActionIntent(1.0, 0.5, [F] * 20), on_step=record)
        self.assertGreater(headings[-1], 0.3)
        self.assertLess(headings[-1], 0.5)
        quarter = len(headings) // 4
        self.assertGreater(headings[quarter] - headings[0], headings[-1] - headings[-quarter])

    def test_the_chase_target_leads_by_twice_the_urgency(self):
        agent = vxs.Agent(0)
        agent.perform_oneshot_py(vxs.ActionIntent(1.5, 0.0, [F] * 10))
        target = vxs.FixedLookaheadChaser.default_py().step_chase_py(agent, DELTA)
        # 3.0 of progress ahead; progress maps linearly to the spline parameter, which is
        # not arc length, so the point itself lies a little further.
        self.assertEqual(target._pos, agent._state._trajectory.position(3.0))
        self.assertEqual(target._vel, (1.5, 0.0, 0.0))
        self.assertEqual(target._progress[0], 1)  # PROGRESS_TO
        self.assertAlmostEqual(target._progress[1], 2.5 * 1.5 * DELTA)


class TestBench(unittest.TestCase):
    def test_the_standard_episode_reports_its_measurements(self):
        from bgen.sim.bench import format_report, run_standard_episode
        result = run_standard_episode(vxs, steps=150, delta=DELTA, seed=0)
        for key in ("steps_per_s", "real_time_factor", "phases_us", "phases_action_us",
                    "action_steps", "reached", "start", "target", "lift"):
            self.assertIn(key, result)
        self.assertEqual(set(result["phases_us"]), {"chase", "dynamics", "collisions", "distance"})
        self.assertEqual(result["action_steps"], 150)  # 1.5 s is too short to arrive
        self.assertFalse(result["reached"])
        report = format_report(result)
        self.assertIn("steps/s:", report)
        self.assertIn("per step (us), with an action: chase", report)

    def test_a_normal_run_places_start_and_target_as_episodes_do_and_reports_no_failure(self):
        from bgen.sim import bench
        from bgen.sim.scenarios import place_above_obstacles
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(bench.main(["--backend", "embedded", "--steps", "20", "--seed", "0"]), 0)
        lines = out.getvalue().splitlines()
        self.assertRegex(lines[0], r"^machine: \d+ cores?.*Python 3\.\d+.*\d{4}-\d\d-\d\d \d\d:\d\d UTC$")
        self.assertNotIn("fail", out.getvalue().lower())
        world = bench.build_world(vxs, 0)
        result = bench.run_standard_episode(vxs, steps=10, delta=DELTA, seed=0)
        self.assertEqual((result["start"], result["target"], result["lift"]),
                         (list(place_above_obstacles(world, bench.START)),
                          list(place_above_obstacles(world, bench.TARGET)), 0))

    def test_bad_flags_exit_with_usage_status(self):
        from bgen.sim.bench import parse_args
        for argv in (["--steps", "0"], ["--delta", "-1"], ["--urgency", "0"],
                     ["--backend", "other"]):
            with self.subTest(argv=argv):
                with contextlib.redirect_stderr(io.StringIO()):
                    with self.assertRaises(SystemExit) as caught:
                        parse_args(argv)
                self.assertEqual(caught.exception.code, 2)


if __name__ == "__main__":
    unittest.main()
