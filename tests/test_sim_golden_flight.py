"""Golden flights: the simulator's step is bit-for-bit what it was when these hashes were taken.

Every speed-up of the chaser, the dynamics, the collisions or the episode loop must leave the
flights below unchanged to the last bit: the hashes are of the positions (float64 bytes) and
the running collision counts of each step, for flights that exercise Replace, Push, Hold and
yaw commands over terrain, and for the standard A* episode (planner, episode loop, step log).
A change that alters them changes what every recorded flight, replay and grade means; it
must be a deliberate fidelity fix, with the new hashes and the reason in its commit.
"""

import hashlib
import unittest
from unittest import mock

import numpy as np

from bgen.bench.runner import STANDARD_POLICY   # the standard episode's A* policy
from bgen.runner import replay
from bgen.runner.episode import EpisodeConfig, build_sim, run_episode
from bgen.sim import load_backend

VXS = load_backend("embedded")
CONFIG = EpisodeConfig(max_steps=700, delta=0.01, target=(60, 60, -20), start=(50, 50, -20),
                       scenario="terrain", use_px4=True, backend="embedded")

# MoveDir codes (bgen.runner.replay.MOVE_CODES): 0 none, 1 forward, 2 back, 3 left, 4 right,
# 5 up, 6 down, 7 undecided.
SCRIPTED = {
    0: [{"mode": "Replace", "urgency": 1.0, "yaw": 0.0, "moves": [1, 1, 4, 4, 1, 6, 1]}],
    40: [{"mode": "Push", "urgency": 0.6, "yaw": 0.7, "moves": [4, 4, 5, 3]}],
    90: [{"mode": "Replace", "urgency": 1.8, "yaw": -1.2, "moves": [2, 2, 3, 3, 6]}],
    260: [{"mode": "Hold", "coord": [52, 51, -26], "yaw": 0.3}],
    330: [{"mode": "Replace", "urgency": 0.3, "yaw": 3.0, "moves": [1, 5, 5, 1]}],
    420: [{"mode": "Replace", "urgency": 1.2, "yaw": 0.0, "moves": [6] * 12}],
    600: [{"mode": "Hold", "coord": [50, 50, -26], "yaw": 0.0}],
    610: [{"mode": "Replace", "urgency": 1.0, "yaw": 0.0, "moves": [6, 6, 6, 6, 6]}],
}

GOLDEN_SCRIPTED = {
    0: "16351886da4f75ccc406b9a6e4c99363",
    3: "b15c715b55a341d24716f79181bb208e",
}
GOLDEN_COLLISIONS = "7026b100a8b57854e2df6afb138a3f4d"
GOLDEN_STANDARD = {
    0: "609cbc3046b1a32aa0243817bc5dd4fe",
    5: "a20a600536d11c369e6f3bc40c143cdc",
}

def flight_hash(positions, collisions) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(positions, dtype="<f8").tobytes())
    digest.update(np.ascontiguousarray(collisions, dtype="<i8").tobytes())
    return digest.hexdigest()[:32]


def scripted_flight(seed: int) -> str:
    steps = [replay.parse_commands(SCRIPTED.get(index)) for index in range(700)]
    flight = replay.replay_flight(VXS, build_sim(VXS, CONFIG, seed), CONFIG.delta, steps,
                                  CONFIG.max_speed_mps)
    return flight_hash(flight.positions, flight.collisions_total)


def collision_answers() -> tuple[str, int]:
    """(hash, count) of ``collisions_py`` at 3,000 seeded points over the terrain around the
    start (seed 0), with the episode's box: what touches, in the reference's order."""
    world = build_sim(VXS, CONFIG, 0).world
    points = np.random.default_rng(7).uniform((44, 44, -27), (56, 56, -19), size=(3000, 3))
    digest, count = hashlib.sha256(), 0
    for point in points.tolist():
        for coord, cell in world.collisions_py(point, [0.5, 0.5, 0.3]):
            digest.update(repr((list(coord), str(cell))).encode())
            count += 1
    return digest.hexdigest()[:32], count


class _Positions:
    def __init__(self):
        self.positions, self.collisions = [], []

    def step(self, log):
        self.positions.append(log["agent_pos"])
        self.collisions.append(log["collisions_count"])

    def warning(self, message):
        pass

    def phase(self, name):
        pass


def standard_flight(seed: int) -> str:
    sink = _Positions()
    outcome = run_episode(STANDARD_POLICY, VXS, CONFIG, seed, sink)
    assert outcome.summary.reason == "success", outcome.summary
    return flight_hash(np.array(sink.positions), np.cumsum(sink.collisions))


class GoldenFlightTests(unittest.TestCase):
    def test_scripted_flights_are_unchanged(self):
        for seed, expected in GOLDEN_SCRIPTED.items():
            with self.subTest(seed=seed):
                self.assertEqual(scripted_flight(seed), expected)

    def test_collisions_are_unchanged(self):
        digest, count = collision_answers()
        self.assertGreater(count, 500)
        self.assertEqual(digest, GOLDEN_COLLISIONS)

    def test_a_flights_collisions_counted_at_once_are_those_counted_step_by_step(self):
        from bgen.sim.embedded.world import collision_counts
        world = build_sim(VXS, CONFIG, 0).world
        points = np.random.default_rng(7).uniform((44, 44, -27), (56, 56, -19), size=(3000, 3))
        each = [len(world.collisions_py(point, [0.5, 0.5, 0.3])) for point in points.tolist()]
        self.assertGreater(sum(each), 500)
        self.assertEqual(collision_counts(world, points, (0.5, 0.5, 0.3)).tolist(), each)

    def test_the_replay_counts_a_crash_as_step_by_step_counting_does(self):
        dive = {0: [{"mode": "Replace", "urgency": 1.5, "yaw": 0.0, "moves": [6] * 30}]}
        steps = [replay.parse_commands(dive.get(index)) for index in range(400)]

        def fly():
            return replay.replay_flight(VXS, build_sim(VXS, CONFIG, 0), CONFIG.delta, steps,
                                        CONFIG.max_speed_mps)

        at_once = fly()
        with mock.patch.object(replay, "collision_counts", return_value=None):
            step_by_step = fly()
        self.assertGreater(int(at_once.collisions_total[-1]), 0)
        self.assertEqual(at_once.collisions_total.tolist(), step_by_step.collisions_total.tolist())
        np.testing.assert_array_equal(at_once.positions, step_by_step.positions)

    def test_standard_episodes_are_unchanged(self):
        for seed, expected in GOLDEN_STANDARD.items():
            with self.subTest(seed=seed):
                self.assertEqual(standard_flight(seed), expected)


if __name__ == "__main__":
    unittest.main()
