"""Specification of event shaping, step decimation and port blocks (bgen.server.progress)."""

import unittest

from bgen.server.progress import (StepThrottle, best_iteration, port_block, render_channels, timing,
                                  to_wire)


class TestWireShape(unittest.TestCase):
    def test_a_flat_runner_step_is_nested_under_step_as_the_reference_clients_read_it(self):
        wire = to_wire({"type": "step", "seed": 3, "iteration": 1, "step": 120, "t": 1.2,
                        "distance_to_target": 4.0})
        self.assertEqual(wire, {"type": "step", "seed": 3, "iteration": 1,
                                "step": {"seed": 3, "step": 120, "t": 1.2, "distance_to_target": 4.0}})

    def test_a_flat_summary_is_nested_under_summary(self):
        wire = to_wire({"type": "episode_summary", "seed": 2, "success": True, "steps": 40})
        self.assertEqual(wire["summary"], {"seed": 2, "success": True, "steps": 40})
        self.assertEqual(wire["seed"], 2)

    def test_events_already_in_the_reference_shape_are_kept(self):
        event = {"type": "step", "step": {"t": 0.5}}
        self.assertEqual(to_wire(event), event)
        self.assertIsNot(to_wire(event), event)

    def test_a_critique_carries_its_text_under_the_reference_field_critique(self):
        wire = to_wire({"type": "critique", "text": "2/3 reached the target", "aggregate": {}})
        self.assertEqual(wire["critique"], "2/3 reached the target")
        self.assertEqual(wire["text"], "2/3 reached the target")

    def test_other_events_are_copied_unchanged(self):
        event = {"type": "critique", "critique": "text", "aggregate": {"success_rate": 0.5}}
        self.assertEqual(to_wire(event), event)


class TestStepThrottle(unittest.TestCase):
    def test_at_most_hz_steps_per_second_per_episode_go_out(self):
        throttle = StepThrottle(hz=8)     # steps every 1/64 s: exact in binary floating point
        sent = [i for i in range(64) if throttle.offer(("it", None, 0), {"i": i}, now=i / 64)]
        self.assertEqual(sent, [0, 8, 16, 24, 32, 40, 48, 56])

    def test_episodes_are_throttled_independently(self):
        throttle = StepThrottle(hz=1)
        self.assertIsNotNone(throttle.offer((0, None, 1), {"i": 0}, now=0.0))
        self.assertIsNotNone(throttle.offer((0, None, 2), {"i": 0}, now=0.0))
        self.assertIsNone(throttle.offer((0, None, 1), {"i": 1}, now=0.5))

    def test_the_last_held_back_step_comes_out_when_the_episode_ends(self):
        throttle = StepThrottle(hz=1)
        throttle.offer("ep", {"i": 0}, now=0.0)
        throttle.offer("ep", {"i": 1}, now=0.1)
        throttle.offer("ep", {"i": 2}, now=0.2)
        self.assertEqual(throttle.flush("ep"), {"i": 2})
        self.assertIsNone(throttle.flush("ep"))

    def test_nothing_is_held_when_the_last_step_went_out(self):
        throttle = StepThrottle(hz=1)
        throttle.offer("ep", {"i": 0}, now=0.0)
        self.assertIsNone(throttle.flush("ep"))

    def test_zero_hz_lets_every_step_through(self):
        throttle = StepThrottle(hz=0)
        self.assertTrue(all(throttle.offer("ep", {"i": i}, now=0.0) for i in range(50)))

    def test_flush_all_returns_held_steps_in_id_order(self):
        throttle = StepThrottle(hz=1)
        for key, first, held in (("a", 1, 5), ("b", 2, 3)):
            throttle.offer(key, {"id": first}, now=0.0)
            throttle.offer(key, {"id": held}, now=0.1)
        self.assertEqual(throttle.flush_all(), [{"id": 3}, {"id": 5}])


class TestAggregates(unittest.TestCase):
    def test_timing_is_the_reference_shape(self):
        self.assertEqual(timing(6.0, 2.0), {"sim_time_s": 6.0, "wall_time_s": 2.0, "speedup_x": 3.0})
        self.assertIsNone(timing(0.0, 0.0)["speedup_x"])

    def test_best_iteration_has_the_highest_success_rate_and_the_later_wins_a_tie(self):
        iterations = [{"iteration": 0, "aggregate": {"success_rate": 0.5}},
                      {"iteration": 1, "aggregate": {"success_rate": 1.0}},
                      {"iteration": 2, "aggregate": {"success_rate": 1.0}},
                      {"iteration": 3, "aggregate": {}}]
        self.assertEqual(best_iteration(iterations), 2)
        self.assertIsNone(best_iteration([]))


class TestRenderPorts(unittest.TestCase):
    def test_the_first_block_is_the_renderers_default(self):
        self.assertEqual(render_channels(port_block((8080, 8081, 8090, 9090), 0)),
                         [("world", 8080), ("agents", 8081), ("pov_world_0", 8090), ("pov_agents_0", 9090)])

    def test_further_blocks_shift_by_100(self):
        self.assertEqual(port_block((8080, 8081, 8090, 9090), 3), (8380, 8381, 8390, 9390))

    def test_no_two_blocks_share_a_port(self):
        ports = [p for i in range(10) for p in port_block((8080, 8081, 8090, 9090), i)]
        self.assertEqual(len(ports), len(set(ports)))

    def test_a_zero_base_means_os_chosen_ports(self):
        self.assertEqual(port_block((0, 0, 0, 0), 0), (0, 0, 0, 0))
        self.assertEqual([p for _, p in render_channels((0, 0, 0, 0))], [0, 0, 0, 0])


if __name__ == "__main__":
    unittest.main()
