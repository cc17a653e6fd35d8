"""Specification of Agent, Action, PyAgentStateUpdate and the camera types.

Runs on whichever backend ``load_backend()`` returns: the expected messages and rules are
voxelsim's (``voxelsim/src/py.rs``, ``agent/mod.rs``, ``agent/viewport.rs``).
``EmbeddedOnly...`` classes test internals of the embedded backend and are skipped on voxelsim.
"""

import math
import random
import unittest

from bgen.sim import backend_label, load_backend

vxs = load_backend()
EMBEDDED = backend_label(vxs) == "embedded"
embedded_only = unittest.skipUnless(EMBEDDED, "internals of the embedded backend")

F, B, L, R, U, D = (vxs.MoveDir.Forward, vxs.MoveDir.Back, vxs.MoveDir.Left,
                    vxs.MoveDir.Right, vxs.MoveDir.Up, vxs.MoveDir.Down)


def intent(*moves, urgency=1.0, yaw=0.0):
    return vxs.ActionIntent(urgency, yaw, list(moves))


def names(an_intent):
    return [m.to_string() for m in an_intent.get_move_sequence()]


def agent_at(coord=(0, 0, 0)):
    agent = vxs.Agent(0)
    agent.set_hold_py(list(coord), 0.0)
    return agent


class TestConstruction(unittest.TestCase):
    def test_a_new_agent_holds_the_origin(self):
        agent = vxs.Agent(3)
        self.assertEqual(agent.get_pos(), [0.0, 0.0, 0.0])
        self.assertEqual(agent.get_coord_py(), [0, 0, 0])
        self.assertIsNone(agent.get_action_py())

    def test_the_id_must_be_an_unsigned_integer(self):
        with self.assertRaises(TypeError) as caught:
            vxs.Agent(1.0)
        self.assertEqual(str(caught.exception),
                         "argument 'id': 'float' object cannot be interpreted as an integer")
        with self.assertRaises(OverflowError):
            vxs.Agent(-1)

    def test_classes_without_a_constructor_refuse_to_be_called(self):
        for cls in (vxs.Action, vxs.PyAgentStateUpdate, vxs.ChaseTarget,
                    vxs.FixedLookaheadChaser, vxs.QuadParams, vxs.EnvState,
                    vxs.CameraOrientation):
            with self.subTest(cls=cls.__name__):
                with self.assertRaises(TypeError) as caught:
                    cls()
                self.assertEqual(str(caught.exception),
                                 f"No constructor defined for {cls.__name__}")

    def test_the_state_update_class_is_named_as_voxelsim_registers_it(self):
        self.assertEqual(vxs.PyAgentStateUpdate.__name__, "PyAgentStateUpdate")


class TestPosition(unittest.TestCase):
    def test_set_pos_and_get_pos_round_trip_as_a_list_of_floats(self):
        agent = vxs.Agent(0)
        agent.set_pos([1, 2.5, -3])
        self.assertEqual(agent.get_pos(), [1.0, 2.5, -3.0])
        self.assertIsInstance(agent.get_pos()[0], float)

    def test_get_coord_rounds_halves_away_from_zero(self):
        cases = ((0.5, 1), (-0.5, -1), (1.49, 1), (2.5, 3), (-2.5, -3), (-0.49, 0),
                 (0.49999999999999994, 0), (7.0, 7))
        agent = vxs.Agent(0)
        for x, expected in cases:
            with self.subTest(x=x):
                agent.set_pos([x, 0.0, 0.0])
                self.assertEqual(agent.get_coord_py(), [expected, 0, 0])

    def test_set_hold_moves_to_the_cell_and_holds_it(self):
        agent = vxs.Agent(0)
        agent.perform_oneshot_py(intent(F, F))
        agent.set_hold_py([1, 2, -3], 0.5)
        self.assertEqual(agent.get_pos(), [1.0, 2.0, -3.0])
        self.assertIsNone(agent.get_action_py())

    def test_bad_arguments_fail_as_pyo3_conversions_do(self):
        agent = vxs.Agent(0)
        cases = (
            (lambda: agent.set_hold_py([1.0, 2, 3], 0.0), TypeError,
             "argument 'coord': 'float' object cannot be interpreted as an integer"),
            (lambda: agent.set_hold_py([1, 2], 0.0), ValueError,
             "expected a sequence of length 3 (got 2)"),
            (lambda: agent.set_hold_py([1, 2, 3], "north"), TypeError,
             "argument 'yaw': must be real number, not str"),
            (lambda: agent.set_pos("abc"), TypeError,
             "argument 'pos': must be real number, not str"),
        )
        for call, error, message in cases:
            with self.subTest(message=message):
                with self.assertRaises(error) as caught:
                    call()
                self.assertEqual(str(caught.exception), message)


class TestPerformOneshot(unittest.TestCase):
    def test_perform_starts_an_action_at_the_current_cell(self):
        agent = agent_at((5, 6, -7))
        agent.perform_oneshot_py(intent(F, R))
        action = agent.get_action_py()
        self.assertEqual(action.get_origin(), (5, 6, -7))
        self.assertEqual(action.intent_count(), 1)
        self.assertEqual(names(action.get_intent_queue()[0]), ["Forward", "Right"])

    def test_perform_replaces_the_current_action(self):
        agent = agent_at()
        agent.perform_oneshot_py(intent(F))
        agent.push_back_intent_py(intent(R))
        agent.perform_oneshot_py(intent(U))
        queue = agent.get_action_py().get_intent_queue()
        self.assertEqual([names(i) for i in queue], [["Up"]])

    def test_get_action_returns_a_fresh_copy_each_time(self):
        agent = agent_at()
        agent.perform_oneshot_py(intent(F))
        copy = agent.get_action_py()
        copy.set_origin(9, 9, 9)
        self.assertEqual(agent.get_action_py().get_origin(), (0, 0, 0))
        self.assertIsNot(agent.get_action_py(), agent.get_action_py())

    def test_invalid_intents_fail_with_voxelsims_messages(self):
        cases = (
            (intent(), "Could not perform intent: No commands"),
            (intent(F, B), "Could not perform intent: Duplicate centroid"),
            (intent(vxs.MoveDir.none()), "Could not perform intent: Duplicate centroid"),
            (intent(F, R, B, L), "Could not perform intent: Duplicate centroid"),
        )
        for bad, message in cases:
            with self.subTest(message=message, moves=names(bad)):
                agent = agent_at()
                with self.assertRaises(Exception) as caught:
                    agent.perform_oneshot_py(bad)
                self.assertIs(type(caught.exception), Exception)
                self.assertEqual(str(caught.exception), message)
                self.assertIsNone(agent.get_action_py())

    def test_undecided_moves_make_no_cell(self):
        agent = agent_at()
        agent.perform_oneshot_py(intent(vxs.MoveDir.undecided()))
        self.assertEqual(agent.get_action_py().intent_count(), 1)

    def test_the_intent_must_be_an_action_intent(self):
        with self.assertRaises(TypeError) as caught:
            vxs.Agent(0).perform_oneshot_py("Forward")
        self.assertEqual(str(caught.exception),
                         "argument 'intent': 'str' object cannot be converted to 'ActionIntent'")

    def test_urgency_that_is_not_positive_is_a_panic_not_an_exception(self):
        for urgency in (0.0, -1.0, float("nan")):
            with self.subTest(urgency=urgency):
                with self.assertRaises(BaseException) as caught:
                    vxs.ActionIntent(urgency, 0.0, [F])
                self.assertIs(type(caught.exception), vxs.PanicException)
                self.assertNotIsInstance(caught.exception, Exception)


class TestPushBack(unittest.TestCase):
    def test_push_while_holding_starts_an_action_from_the_current_cell(self):
        agent = agent_at((1, 1, 1))
        agent.push_back_intent_py(intent(F))
        action = agent.get_action_py()
        self.assertEqual((action.get_origin(), action.intent_count()), ((1, 1, 1), 1))

    def test_push_while_acting_queues_behind(self):
        agent = agent_at()
        agent.perform_oneshot_py(intent(F, F))
        agent.push_back_intent_py(intent(B))  # (1,0,0) again: allowed across intents
        queue = agent.get_action_py().get_intent_queue()
        self.assertEqual([names(i) for i in queue], [["Forward", "Forward"], ["Back"]])

    def test_a_failed_push_while_acting_still_queues_the_intent(self):
        agent = agent_at()
        agent.perform_oneshot_py(intent(F))
        with self.assertRaises(Exception) as caught:
            agent.push_back_intent_py(intent(R, L))
        self.assertEqual(str(caught.exception), "Could not push back intent: Duplicate centroid")
        self.assertEqual(agent.get_action_py().intent_count(), 2)

    def test_a_failed_push_while_holding_uses_the_perform_prefix(self):
        agent = agent_at()
        with self.assertRaises(Exception) as caught:
            agent.push_back_intent_py(intent())
        self.assertEqual(str(caught.exception), "Could not perform intent: No commands")

    def test_an_empty_intent_queued_behind_panics_once_the_flight_reaches_it(self):
        agent = agent_at()
        agent.perform_oneshot_py(intent(F, F))
        agent.push_back_intent_py(intent())  # accepted: voxelsim checks only when starting
        chaser = vxs.FixedLookaheadChaser.default_py()
        dynamics = vxs.QuadDynamics(vxs.QuadParams.default_py())
        env = vxs.EnvState.default_py()
        with self.assertRaises(vxs.PanicException):
            for _ in range(500):  # progress passes the first move within about 100 steps
                target = chaser.step_chase_py(agent, 0.01)
                dynamics.update_agent_dynamics_py(agent, env, target, 0.01)


class TestUpdateState(unittest.TestCase):
    def update(self, agent, update):
        agent.update_state_py(update)
        action = agent.get_action_py()
        return None if action is None else [names(i) for i in action.get_intent_queue()]

    def test_push_queues_like_push_back(self):
        agent = agent_at()
        agent.perform_oneshot_py(intent(F))
        self.assertEqual(self.update(agent, vxs.PyAgentStateUpdate.push(intent(R))),
                         [["Forward"], ["Right"]])

    def test_replace_starts_over_from_the_current_cell(self):
        agent = agent_at((2, 0, 0))
        agent.perform_oneshot_py(intent(F))
        agent.set_pos([4.2, 0.0, 0.0])
        self.assertEqual(self.update(agent, vxs.PyAgentStateUpdate.replace([intent(U), intent(R)])),
                         [["Up"], ["Right"]])
        self.assertEqual(agent.get_action_py().get_origin(), (4, 0, 0))

    def test_replace_with_no_intents_leaves_an_empty_action(self):
        agent = agent_at()
        self.assertEqual(self.update(agent, vxs.PyAgentStateUpdate.replace([])), [])

    def test_truncate_while_holding_acts_like_replace(self):
        agent = agent_at()
        self.assertEqual(self.update(agent, vxs.PyAgentStateUpdate.truncate([intent(D)])),
                         [["Down"]])

    def test_truncate_keeps_the_queue_minus_as_many_as_the_intent_in_flight_plus_one(self):
        # voxelsim keeps len - (index of the intent in flight + 1) intents from the front.
        agent = agent_at()
        agent.perform_oneshot_py(intent(F, F))
        self.assertEqual(self.update(agent, vxs.PyAgentStateUpdate.truncate([intent(R, R)])),
                         [["Right", "Right"]])
        self.assertEqual(agent.get_action_py().get_origin(), (0, 0, 0))
        agent.push_back_intent_py(intent(U, U))
        agent.push_back_intent_py(intent(F, F))
        self.assertEqual(self.update(agent, vxs.PyAgentStateUpdate.truncate([intent(D, D)])),
                         [["Right", "Right"], ["Up", "Up"], ["Down", "Down"]])

    def test_truncate_finds_no_intent_in_flight_among_single_moves_at_the_start(self):
        # The intent in flight is the first whose (moves - 1)-th waypoint lies ahead; with
        # one-move intents at progress 0 there is none, and voxelsim reports invalid progress.
        agent = agent_at()
        agent.perform_oneshot_py(intent(F))
        with self.assertRaises(Exception) as caught:
            agent.update_state_py(vxs.PyAgentStateUpdate.truncate([intent(R)]))
        self.assertEqual(str(caught.exception), "Could not update agent state: Invalid progress")

    def test_hold_ends_the_action_without_moving_the_agent(self):
        agent = agent_at()
        agent.perform_oneshot_py(intent(F))
        agent.set_pos([0.3, 0.2, 0.1])
        self.assertIsNone(self.update(agent, vxs.PyAgentStateUpdate.hold([1, 1, 1], 0.5)))
        self.assertEqual(agent.get_pos(), [0.3, 0.2, 0.1])

    def test_hold_without_arguments_holds_the_current_cell(self):
        agent = agent_at((3, 3, 3))
        agent.perform_oneshot_py(intent(F))
        self.assertIsNone(self.update(agent, vxs.PyAgentStateUpdate.hold(None, None)))

    def test_failed_updates_carry_the_update_prefix(self):
        agent = agent_at()
        with self.assertRaises(Exception) as caught:
            agent.update_state_py(vxs.PyAgentStateUpdate.replace([intent(F), intent()]))
        self.assertEqual(str(caught.exception), "Could not update agent state: No commands")
        with self.assertRaises(Exception) as caught:
            agent.update_state_py(vxs.PyAgentStateUpdate.push(intent(U, D)))
        self.assertEqual(str(caught.exception),
                         "Could not update agent state: Duplicate centroid")

    def test_bad_update_arguments_fail_as_pyo3_conversions_do(self):
        cases = (
            (lambda: vxs.Agent(0).update_state_py("hold"), TypeError,
             "argument 'update': 'str' object cannot be converted to 'PyAgentStateUpdate'"),
            (lambda: vxs.PyAgentStateUpdate.replace("abc"), TypeError,
             "argument 'intents': Can't extract `str` to `Vec`"),
            (lambda: vxs.PyAgentStateUpdate.truncate([1]), TypeError,
             "argument 'intents': 'int' object cannot be converted to 'ActionIntent'"),
            (lambda: vxs.PyAgentStateUpdate.hold([0.0, 0, 0], None), TypeError,
             "argument 'coord': 'float' object cannot be interpreted as an integer"),
            (lambda: vxs.PyAgentStateUpdate.push(None), TypeError,
             "argument 'intent': 'NoneType' object cannot be converted to 'ActionIntent'"),
        )
        for call, error, message in cases:
            with self.subTest(message=message):
                with self.assertRaises(error) as caught:
                    call()
                self.assertEqual(str(caught.exception), message)


class TestAction(unittest.TestCase):
    def action(self):
        agent = agent_at((1, 2, 3))
        agent.perform_oneshot_py(intent(F, F))
        return agent.get_action_py()

    def test_origin_is_a_tuple_and_can_be_set_on_the_copy(self):
        action = self.action()
        self.assertEqual(action.get_origin(), (1, 2, 3))
        action.set_origin(4, 5, 6)
        self.assertEqual(action.get_origin(), (4, 5, 6))
        with self.assertRaises(TypeError) as caught:
            action.set_origin(1.5, 0, 0)
        self.assertEqual(str(caught.exception),
                         "argument 'x': 'float' object cannot be interpreted as an integer")

    def test_appending_returns_a_new_action_and_leaves_this_one_alone(self):
        action = self.action()
        longer = action.appending_intent_py(intent(R))
        self.assertEqual((action.intent_count(), longer.intent_count()), (1, 2))
        self.assertEqual(names(longer.get_intent_queue()[1]), ["Right"])

    def test_appending_an_invalid_intent_fails_with_voxelsims_message(self):
        with self.assertRaises(Exception) as caught:
            self.action().appending_intent_py(intent(R, L))
        self.assertEqual(str(caught.exception),
                         "Could not append intent to action: Duplicate centroid")


class TestCamera(unittest.TestCase):
    def test_default_projection_is_voxelsims(self):
        proj = vxs.CameraProjection.default_py()
        self.assertEqual((proj.aspect, proj.fov_vertical, proj.max_distance, proj.near_distance),
                         (1.4, 0.8, 50.0, 0.5))

    def test_projection_fields_are_read_write_floats(self):
        proj = vxs.CameraProjection(2, 1, 10, 0.1)
        proj.aspect = 3
        self.assertEqual(proj.aspect, 3.0)
        self.assertIsInstance(proj.aspect, float)
        with self.assertRaises(TypeError):
            proj.fov_vertical = "wide"

    def test_projection_arguments_are_converted(self):
        with self.assertRaises(TypeError) as caught:
            vxs.CameraProjection(1.4, "0.8", 50.0, 0.5)
        self.assertEqual(str(caught.exception),
                         "argument 'fov_vertical': must be real number, not str")

    def test_camera_view_needs_an_orientation(self):
        agent = vxs.Agent(0)
        self.assertIsInstance(agent.camera_view_py(vxs.CameraOrientation.vertical_tilt_py(-0.5)),
                              vxs.CameraView)
        with self.assertRaises(TypeError) as caught:
            agent.camera_view_py(0)
        self.assertEqual(str(caught.exception),
                         "argument 'orientation': 'int' object cannot be converted to "
                         "'CameraOrientation'")
        with self.assertRaises(TypeError) as caught:
            vxs.CameraOrientation.vertical_tilt_py("down")
        self.assertEqual(str(caught.exception), "argument 'tilt': must be real number, not str")


@embedded_only
class EmbeddedOnlyCameraVectors(unittest.TestCase):
    def assertVector(self, actual, expected):
        for a, e in zip(actual, expected):
            self.assertAlmostEqual(a, e, places=12)

    def test_an_untilted_camera_on_a_level_drone_looks_forward(self):
        agent = agent_at((1, 2, -3))
        view = agent.camera_view_py(vxs.CameraOrientation.vertical_tilt_py(0.0))
        self.assertEqual(view._pos, (1.0, 2.0, -3.0))
        self.assertVector(view._forward, (1, 0, 0))
        self.assertVector(view._up, (0, 0, -1))
        self.assertVector(view._right, (0, 1, 0))

    def test_a_negative_tilt_looks_down(self):
        view = vxs.Agent(0).camera_view_py(vxs.CameraOrientation.vertical_tilt_py(-0.5))
        self.assertVector(view._forward, (math.cos(0.5), 0.0, math.sin(0.5)))  # +z is down
        self.assertVector(view._right, (0, 1, 0))

    def test_the_view_follows_the_drone_attitude(self):
        agent = vxs.Agent(0)
        half = math.pi / 4  # yaw of 90 degrees about +z
        agent._attitude = (math.cos(half), 0.0, 0.0, math.sin(half))
        view = agent.camera_view_py(vxs.CameraOrientation.vertical_tilt_py(0.0))
        self.assertVector(view._forward, (0, 1, 0))


@embedded_only
class EmbeddedOnlyTrajectory(unittest.TestCase):
    def trajectory(self, *moves, origin=(0, 0, 0)):
        from bgen.sim.embedded.agent import build_trajectory
        return build_trajectory([intent(*moves)], origin)

    def test_a_straight_path_keeps_its_centroids_and_measures_one_per_move(self):
        traj = self.trajectory(F, F, F, F)
        self.assertEqual(traj.ctrl_pts, [(float(i), 0.0, 0.0) for i in range(5)])
        self.assertEqual(traj.waypoints, [0.0, 1.0, 2.0, 3.0, 4.0])
        self.assertEqual((traj.degree, traj.length), (3, 4.0))
        self.assertEqual(traj.knots, [0.0] * 4 + [0.5] + [1.0] * 4)
        self.assertEqual(traj.position(0.0), (0.0, 0.0, 0.0))
        end = traj.position(traj.length)
        self.assertAlmostEqual(end[0], 4.0, places=6)
        self.assertEqual(end[1:], (0.0, 0.0))

    def test_smoothing_keeps_every_point_inside_its_cell(self):
        traj = self.trajectory(F, F, R, R, U, F, F, D, R)
        cells = [(0, 0, 0), (1, 0, 0), (2, 0, 0), (2, 1, 0), (2, 2, 0), (2, 2, -1),
                 (3, 2, -1), (4, 2, -1), (4, 2, 0), (4, 3, 0)]
        for point, cell in zip(traj.ctrl_pts, cells):
            with self.subTest(cell=cell):
                self.assertTrue(all(abs(p - c) <= 0.5 + 1e-12 for p, c in zip(point, cell)))
        self.assertNotEqual(traj.ctrl_pts[3], (2.0, 1.0, 0.0))  # the corner was cut

    def test_urgency_and_yaw_are_sampled_between_cells(self):
        from bgen.sim.embedded.agent import build_trajectory
        traj = build_trajectory([intent(F, urgency=1.0, yaw=0.0),
                                 intent(F, urgency=2.0, yaw=1.0)], (0, 0, 0))
        self.assertEqual(traj.sample_urgencies(0.0), 1.0)
        self.assertAlmostEqual(traj.sample_urgencies(1.5), 1.5)
        self.assertAlmostEqual(traj.sample_yaw(1.25), 0.25)
        self.assertIsNone(traj.sample_urgencies(2.5))

    def test_moves_and_progress_convert_both_ways(self):
        traj = self.trajectory(F, F, R, R)
        for m in (0.0, 0.5, 1.0, 2.25, 3.5):
            with self.subTest(m=m):
                self.assertAlmostEqual(traj.move_for_progress(traj.progress_for_move(m)), m)
        self.assertIsNone(traj.progress_for_move(4.5))
        self.assertIsNone(traj.move_for_progress(traj.length))
        self.assertEqual(traj.progress_for_move_idx(2), traj.waypoints[2])
        self.assertIsNone(traj.progress_for_move_idx(9))

    def test_nearest_point_matches_voxelsims_sampled_search(self):
        """The exact minimiser agrees with 101 samples + 10 ternary steps to their precision."""
        rng = random.Random(7)
        directions = [F, B, L, R, U, D]
        for trial in range(25):
            pos, seen, moves = (0, 0, 0), {(0, 0, 0)}, []
            for _ in range(rng.randint(2, 16)):
                rng.shuffle(directions)
                for d in directions:
                    v = d.get_direction_vector()
                    nxt = (pos[0] + v[0], pos[1] + v[1], pos[2] + v[2])
                    if nxt not in seen:
                        break
                seen.add(nxt)
                pos = nxt
                moves.append(d)
            traj = self.trajectory(*moves)
            start = 0.0
            for _ in range(6):
                start = min(traj.length * 0.99, start + rng.random() * traj.length * 0.2)
                near = traj.position(max(0.0, start + rng.uniform(-1.0, 3.0)))
                point = tuple(c + rng.gauss(0.0, 0.5) for c in near)
                with self.subTest(trial=trial, start=start):
                    ours = traj.nearest(start, traj.length, point)[0]
                    theirs = sampled_search(traj, start, traj.length, point)
                    self.assertLess(abs(ours - theirs), 0.04 * (traj.length - start) / 100 + 1e-9)


def sampled_search(traj, start, end, point):
    """voxelsim's ``find_nearest_param_in_range``, written out for comparison."""
    def d2(t):
        return sum((a - b) ** 2 for a, b in zip(traj.position(t), point))
    best_t, best = start, math.inf
    for i in range(101):
        t = start + (end - start) * i / 100
        if d2(t) < best:
            best, best_t = d2(t), t
    step = (end - start) / 100
    left, right = max(best_t - step, start), min(best_t + step, end)
    for _ in range(10):
        t1, t2 = left + (right - left) / 3, right - (right - left) / 3
        if d2(t1) < d2(t2):
            right = t2
        else:
            left = t1
    return (left + right) / 2


if __name__ == "__main__":
    unittest.main()
