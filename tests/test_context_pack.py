"""Specification of the context pack given to the LLM, and of the prompts built from it.

The cheatsheet's python blocks are executed line by line against the embedded backend (every
statement must run, so every error it teaches is really raised); the template and every
example are loaded by the sandbox and flown in real episodes by the runner.
"""

from __future__ import annotations

import ast
import math
import random
import re
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np

from bgen.llm.context import (EXAMPLE_NAMES, FACTS, ContextPack, cheatsheet, cheatsheet_code_blocks,
                              cheatsheet_idioms, cheatsheet_source, choose_examples, example,
                              load_pack, policy_template)
from bgen.orchestrator import prompt as prompt_module
from bgen.orchestrator.prompt import (Repair, Task, build_repair_prompt, build_system_prompt,
                                      build_user_prompt)
from bgen.runner import sandbox
from bgen.runner.episode import EpisodeConfig
from bgen.sim import load_backend, scenarios

VXS = load_backend("embedded")
REACHABLE_TERRAIN_SEED = 1      # a terrain seed whose default target A* can reach
EPISODE_STEPS = 5000
# Python's own methods that may follow a dot in the cheatsheet; everything else must be API.
PYTHON_METHODS = {"get", "append", "items", "keys", "values", "join", "sqrt", "cos", "sin",
                  "radians", "pi"}


def policy_namespace():
    """What a policy sees, plus the objects act() receives, on a fresh terrain episode."""
    namespace = sandbox.sandbox_globals(VXS)
    standins = sandbox.build_standins(VXS)
    world = scenarios.terrain_world(VXS, REACHABLE_TERRAIN_SEED)
    agent = VXS.Agent(0)
    agent.set_hold_py(list(scenarios.TERRAIN_START), 0.0)
    namespace.update(vxs=standins["voxelsim"], math=standins["math"], agent=agent, world=world,
                     fw=VXS.FilterWorld(), env=VXS.EnvState.default_py(),
                     helpers=sandbox.Helpers(VXS), TARGET=list(scenarios.TERRAIN_TARGET), t=0.0)
    return namespace


def statement_lines(code: str) -> set[int]:
    return {node.lineno for node in ast.walk(ast.parse(code)) if isinstance(node, ast.stmt)}


def run_traced(code: str, filename: str, namespace: dict) -> set[int]:
    """Execute ``code`` and return the line numbers that ran."""
    ran: set[int] = set()

    def tracer(frame, event, arg):
        if frame.f_code.co_filename == filename and event == "line":
            ran.add(frame.f_lineno)
        return tracer

    compiled = compile(code, filename, "exec")
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        exec(compiled, namespace)
    finally:
        sys.settrace(previous)
    return ran


class TestCheatsheet(unittest.TestCase):
    def test_every_python_block_passes_the_sandbox_rules(self):
        for line, code in cheatsheet_code_blocks():
            with self.subTest(block_at_line=line):
                sandbox.validate_source(code)

    def test_every_statement_of_every_block_runs_against_the_embedded_backend(self):
        namespace = policy_namespace()
        for line, code in cheatsheet_code_blocks():
            with self.subTest(block_at_line=line):
                ran = run_traced(code, f"<cheatsheet:{line}>", namespace)
                missing = sorted(line - 1 + n for n in statement_lines(code) - ran)
                self.assertEqual(missing, [], f"cheatsheet lines that never ran: {missing}")

    def test_every_quoted_error_message_is_the_one_the_backend_raises(self):
        namespace = policy_namespace()
        quoted = {}
        for line, code in cheatsheet_code_blocks():
            run_traced(code, f"<cheatsheet:{line}>", namespace)
            for match in re.finditer(r'^\s*(\w+) = str\(error\)\s+# "(.*)"$', code, re.MULTILINE):
                quoted[match.group(1)] = match.group(2)
        self.assertEqual(sorted(quoted), ["float_error", "no_path"])
        for name, message in quoted.items():
            with self.subTest(name=name):
                self.assertEqual(namespace[name], message)
        self.assertIsInstance(namespace["arity_error"], str)

    def test_every_method_named_exists_on_the_backend_or_helpers(self):
        api = set(dir(sandbox.Helpers))
        for name in dir(VXS):
            api.update(dir(getattr(VXS, name)))
        named = set(re.findall(r"\.(\w+)\(", cheatsheet())) | set(re.findall(r"vxs\.(\w+)", cheatsheet()))
        unknown = sorted(n for n in named - PYTHON_METHODS if n not in api and not hasattr(VXS, n))
        self.assertEqual(unknown, [])

    def test_the_cheatsheet_teaches_each_pitfall(self):
        text = cheatsheet()
        for phrase in ("cannot be interpreted as an integer", "must be > 0", "global NAME",
                       "planner raises `Exception`", "more negative\nz is higher",
                       "is `None` while the agent has", "takes exactly three arguments"):
            with self.subTest(phrase=phrase):
                self.assertIn(phrase, text)
        self.assertNotIn("MoveDir.None]", text)


class TestPoliciesFly(unittest.TestCase):
    """The template and the examples load in the sandbox and fly real episodes."""

    @classmethod
    def setUpClass(cls):
        from bgen.runner.worker import check_policy, run_episodes
        cls.check_policy, cls.run_episodes = staticmethod(check_policy), staticmethod(run_episodes)
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def fly(self, name: str, code: str, scenario: str, seed: int) -> dict:
        self.check_policy(code, backend="embedded")
        config = EpisodeConfig(max_steps=EPISODE_STEPS, scenario=scenario, backend="embedded")
        [summary] = self.run_episodes(code, [seed], config, Path(self.tmp.name) / name, workers=1)
        return summary

    def test_the_template_and_every_example_reach_the_target_without_errors(self):
        cases = [("template", policy_template(), "terrain", REACHABLE_TERRAIN_SEED)] + [
            (name, example(name), "wind_farm" if name == "wind_turbine_inspection" else "terrain",
             0 if name == "wind_turbine_inspection" else REACHABLE_TERRAIN_SEED)
            for name in EXAMPLE_NAMES]
        for name, code, scenario, seed in cases:
            with self.subTest(policy=name):
                summary = self.fly(name, code, scenario, seed)
                self.assertIsNone(summary["error"])
                self.assertEqual(summary["reason"], "success", summary.get("reasons"))
                self.assertTrue(summary["policy_summary"].get("summary"))

    def test_every_example_is_a_policy_the_sandbox_loads(self):
        for name in EXAMPLE_NAMES:
            with self.subTest(example=name):
                policy = sandbox.load_policy(example(name), VXS)
                self.assertTrue(callable(policy.act))


class TestPackLoading(unittest.TestCase):
    def test_examples_are_chosen_by_goal_and_scenario(self):
        self.assertEqual(choose_examples("reach the target", "terrain"),
                         ("move_to_target", "reactive_avoidance"))
        self.assertEqual(choose_examples("patrol in a circle", "terrain")[-1], "circular_patrol")
        self.assertEqual(choose_examples("reach it", "wind_farm")[-1], "wind_turbine_inspection")

    def test_an_unknown_example_is_refused_by_name(self):
        with self.assertRaises(KeyError) as caught:
            example("fly_to_moon")
        self.assertIn("fly_to_moon", str(caught.exception))

    def test_the_pack_holds_all_examples_by_default(self):
        self.assertEqual(tuple(load_pack().examples), EXAMPLE_NAMES)


class TestPrompts(unittest.TestCase):
    task = Task(goal="Reach the target while minimizing collisions.", scenario="terrain",
                target=(60.0, 60.0, -20.0), start=(50, 50, -20), max_steps=5000)
    pack = ContextPack(cheatsheet="CHEATSHEET-TEXT", template="TEMPLATE-TEXT",
                       examples={"move_to_target": "EXAMPLE-TEXT"})

    def test_the_system_prompt_states_the_contract_and_every_pitfall(self):
        system = build_system_prompt()
        for phrase in ("act(t, agent, world, fw, env, helpers)", "init(config)", "collect(step_ctx)",
                       "finalize(ep_ctx)", "cannot be interpreted as an integer", "Urgency must be > 0",
                       "global NAME", "UnboundLocalError", "try/except Exception", "more negative z is higher",
                       "get_action_py() is None", "```python"):
            with self.subTest(phrase=phrase):
                self.assertIn(phrase, system)

    def test_a_fresh_prompt_has_goal_target_start_scenario_and_the_whole_pack(self):
        user = build_user_prompt(self.task, self.pack)
        for phrase in ("Reach the target while minimizing collisions.", "The nominal target is [60, 60, -20]",
                       "The nominal start is voxel [50, 50, -20]", "Starts and targets differ per seed",
                       "config['start'] and config['target']", "SCENARIO: terrain", "5000 steps",
                       "CHEATSHEET-TEXT", "TEMPLATE-TEXT", "example: move_to_target.py", "EXAMPLE-TEXT"):
            with self.subTest(phrase=phrase):
                self.assertIn(phrase, user)
        self.assertNotIn("CRITIQUE", user)

    def test_a_refinement_prompt_carries_the_code_and_the_critique(self):
        user = build_user_prompt(self.task, self.pack, critique="1. act() raised TypeError",
                                 existing_code="def act(t, agent, world, fw, env, helpers):\n    return None\n")
        self.assertIn("CURRENT POLICY", user)
        self.assertIn("return None", user)
        self.assertIn("CRITIQUE OF THE LAST EVALUATION\n1. act() raised TypeError", user)

    def test_a_repair_prompt_quotes_the_load_error_and_the_failing_line(self):
        code = "import os\ndef act(t, agent, world, fw, env, helpers):\n    return None\n"
        user = build_repair_prompt(self.task, self.pack, Repair(code, "line 1: import of 'os' is not allowed", 1))
        self.assertIn("THE POLICY BELOW FAILED TO LOAD at line 1\nline 1: import of 'os' is not allowed\nline 1: import os", user)
        self.assertIn("```python\nimport os\n", user)
        self.assertNotIn("EXAMPLE-TEXT", user)


if __name__ == "__main__":
    unittest.main()


# --- every idiom and every number the LLM reads, checked against the backend -----------------------

class TestCheatsheetIdioms(unittest.TestCase):
    """Each ```python idiom=<id> block runs and does what the text around it says."""

    def run_idiom(self, name: str, **names) -> dict:
        namespace = policy_namespace()
        namespace.update(names)
        code = cheatsheet_idioms()[name]
        # The idiom's own literal cell is the one under test when the test gives one.
        if "cell" in names:
            code = re.sub(r"^cell = .*$", "", code, count=1, flags=re.MULTILINE)
        if "x" in names:
            code = re.sub(r"^x, y = .*$", "", code, count=1, flags=re.MULTILINE)
        exec(compile(code, f"<idiom:{name}>", "exec"), namespace)
        return namespace

    def test_every_idiom_has_a_test(self):
        self.assertEqual(sorted(cheatsheet_idioms()),
                         sorted(["cell-free", "column-top", "neighbourhood", "touching", "no-cell-twice"]))

    def test_cell_free_is_false_for_a_filled_cell_and_true_for_an_empty_one(self):
        world = VXS.VoxelGrid.from_dict_py({(5, 5, -5): VXS.Cell.filled()})
        self.assertFalse(self.run_idiom("cell-free", world=world, cell=[5, 5, -5])["cell_free"])
        self.assertTrue(self.run_idiom("cell-free", world=world, cell=[5, 6, -5])["cell_free"])
        ground = scenarios.terrain_world(VXS, REACHABLE_TERRAIN_SEED)
        top = scenarios.column_top(ground, 60, 60, radius=0)
        self.assertFalse(self.run_idiom("cell-free", world=ground, cell=[60, 60, top])["cell_free"])
        self.assertTrue(self.run_idiom("cell-free", world=ground, cell=[60, 60, top - 1])["cell_free"])

    def test_the_old_collisions_idiom_really_calls_a_filled_cell_free(self):
        """What the text says about collisions_py: the box's own cell is never examined."""
        world = VXS.VoxelGrid.from_dict_py({(5, 5, -5): VXS.Cell.filled()})
        self.assertEqual(world.collisions_py([5.0, 5.0, -5.0], [0.4, 0.4, 0.4]), [])
        self.assertIn("never at that cell itself", cheatsheet())

    def test_column_top_finds_the_highest_occupied_cell_and_a_clear_point_above_it(self):
        ground = scenarios.terrain_world(VXS, REACHABLE_TERRAIN_SEED)
        for x, y in ((60, 60), (50, 50), (10, 90)):
            with self.subTest(column=(x, y)):
                found = self.run_idiom("column-top", world=ground, x=x, y=y)
                self.assertEqual(found["top"], scenarios.column_top(ground, x, y, radius=0))
                clear = found["clear"]
                for z in (clear[2], clear[2] + 1, clear[2] + 2):
                    self.assertEqual(ground.dense_snapshot_py([x, y, z], [0, 0, 0]).data_py(), [0])
        empty = self.run_idiom("column-top", world=VXS.VoxelGrid(), x=0, y=0)
        self.assertIsNone(empty["top"])

    def test_the_neighbourhood_is_125_cells_and_counts_what_is_solid(self):
        world = VXS.VoxelGrid.from_dict_py({(1, 0, -20): VXS.Cell.filled(), (0, 0, -23): VXS.Cell.filled()})
        agent = VXS.Agent(0)
        agent.set_hold_py([0, 0, -20], 0.0)
        found = self.run_idiom("neighbourhood", world=world, agent=agent)
        self.assertEqual(len(found["near"].data_py()), 125)
        self.assertEqual(len(found["solid"]), 1)      # (0, 0, -23) is 3 cells away: outside

    def test_touching_reports_a_neighbour_the_drone_box_reaches_and_never_its_own_cell(self):
        class At:
            def __init__(self, pos):
                self.pos = pos

            def get_pos(self):
                return list(self.pos)

        beside = VXS.VoxelGrid.from_dict_py({(1, 0, -20): VXS.Cell.filled()})
        inside = VXS.VoxelGrid.from_dict_py({(0, 0, -20): VXS.Cell.filled()})
        for world, pos, expected in ((beside, (0.0, 0.0, -20.0), False),   # 0.25 m from the face
                                     (beside, (0.3, 0.0, -20.0), True),    # box reaches x = 0.55
                                     (inside, (0.0, 0.0, -20.0), False)):  # own cell never examined
            with self.subTest(pos=pos, expected=expected):
                self.assertEqual(self.run_idiom("touching", world=world, agent=At(pos))["touching"], expected)

    def test_an_intent_visiting_a_cell_twice_is_refused_as_the_text_quotes(self):
        found = self.run_idiom("no-cell-twice")
        agent = VXS.Agent(0)
        agent.set_hold_py([0, 0, -20], 0.0)
        with self.assertRaises(Exception) as caught:
            agent.perform_oneshot_py(found["there_and_back"])
        self.assertEqual(str(caught.exception), "Could not perform intent: Duplicate centroid")
        self.assertIn('"Could not perform intent: Duplicate centroid"', cheatsheet())
        agent.perform_oneshot_py(found["there"])
        self.assertIsNotNone(agent.get_action_py())
        with self.assertRaises(Exception) as empty:
            agent.perform_oneshot_py(VXS.ActionIntent(0.8, 0.0, []))
        self.assertIn(f'"{empty.exception}"', cheatsheet())


def straight_flight_policy(moves: int, urgency: float, pattern: str = "[vxs.MoveDir.Forward]") -> str:
    """A policy that flies one intent of ``moves`` cells (``pattern`` repeated) and records the
    step it ended."""
    return f"""import voxelsim as vxs
STATE = {{"sent": False, "done": None}}

def act(t, agent, world, fw, env, helpers):
    if not STATE["sent"]:
        STATE["sent"] = True
        return helpers.intent({urgency}, 0.0, ({pattern} * {moves})[:{moves}])
    if STATE["done"] is None and agent.get_action_py() is None:
        STATE["done"] = round(t / 0.01)
    return None

def collect(step_ctx):
    return {{}}

def finalize(ep_ctx):
    return {{"summary": str(STATE["done"])}}
"""


#: A zig-zag path of 60 cells (MoveDir codes: 1 Forward, 2 Back, 3 Left, 4 Right) on which a
#: drone flying from rest at urgency 1.0 settles more than 1 m off the path and stalls; a
#: model's policy met it on the wind farm.
STALLING_MOVES = [2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 4, 2, 4, 2, 4, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 2,
                  3, 2, 3, 2, 3, 2, 3, 3, 2, 3, 3, 3, 3, 3, 3, 3, 3, 1, 3, 1, 3, 1, 3, 1, 3, 1, 3,
                  1, 3, 1, 1, 1, 1]


def stalling_policy(urgency: float, watchdog: bool, timer: bool = False) -> str:
    """Flies STALLING_MOVES once; with ``watchdog``, replaces an action under which the drone
    moved less than 0.1 m in the last second by a plan to the path's end cell, as the
    cheatsheet says; with ``timer``, one still set past 1.5 times the steps its length needs
    by the cheatsheet's rule. Its summary: the step the agent had no action again, or None."""
    return f"""import math
import voxelsim as vxs
MOVES = {STALLING_MOVES!r}
STATE = {{"sent": False, "done": None, "end": None, "recent": [], "replaced": 0, "given": 0,
          "needs": 0}}

def act(t, agent, world, fw, env, helpers):
    if not STATE["sent"]:
        STATE["sent"] = True
        x, y, z = agent.get_coord_py()
        dx = {{1: 1, 2: -1}}
        dy = {{3: -1, 4: 1}}
        STATE["end"] = [x + sum(dx.get(m, 0) for m in MOVES), y + sum(dy.get(m, 0) for m in MOVES), z]
        STATE["needs"] = {FACTS["plan_start_steps"]} + {FACTS["steps_per_cell"]} * len(MOVES) / {urgency}
        return helpers.intent({urgency}, 0.0, [vxs.MoveDir.from_code_py(m) for m in MOVES])
    pos = agent.get_pos()
    STATE["recent"] = (STATE["recent"] + [pos])[-100:]
    if agent.get_action_py() is None:
        if STATE["done"] is None:
            STATE["done"] = round(t / 0.01)
        return None
    overdue = {timer} and round(t / 0.01) - STATE["given"] > 1.5 * STATE["needs"]
    if overdue or ({watchdog} and len(STATE["recent"]) == 100 and
                   math.dist(STATE["recent"][0], pos) < 0.1):
        STATE["recent"] = []
        STATE["replaced"] += 1
        plan = helpers.plan_to(world, agent.get_coord_py(), STATE["end"], 0.8, 0.0)
        STATE["given"], STATE["needs"] = round(t / 0.01), {FACTS["plan_start_steps"]} + {FACTS["steps_per_cell"]} * plan.len() / 0.8
        return plan, "Replace"
    return None

def collect(step_ctx):
    return {{}}

def finalize(ep_ctx):
    return {{"summary": str(STATE["done"]), "replaced": str(STATE["replaced"])}}
"""


class TestStalledAction(unittest.TestCase):
    """The cheatsheet: an action advances only within chase_advance_m of its path; a drone that
    settles farther hovers for good with the action set; replacing it gets it going."""

    def fly(self, urgency: float, watchdog: bool, timer: bool = False):
        from bgen.runner.episode import ListSink, run_episode
        config = EpisodeConfig(max_steps=6000, scenario="terrain", start=(50, 50, -60),
                               target=(150, 50, -60), backend="embedded")
        sink = ListSink()
        outcome = run_episode(stalling_policy(urgency, watchdog, timer), VXS, config, 0, sink)
        self.assertIsNone(outcome.summary.error, outcome.summary)
        return outcome.summary.policy_summary, sink.steps

    def test_the_chaser_threshold_is_the_stated_one(self):
        from bgen.sim.embedded import chase
        self.assertEqual(chase.DISTANCE_THRESHOLD, FACTS["chase_advance_m"])

    def test_at_urgency_one_the_action_never_ends_and_the_drone_hovers(self):
        summary, steps = self.fly(1.0, watchdog=False)
        self.assertEqual(summary["summary"], "None", "the action ended")
        last = [s["agent_pos"] for s in steps[-1000:]]
        self.assertLess(math.dist(last[0], last[-1]), 0.1)
        self.assertEqual({s["command_len"] for s in steps[-1000:]}, {len(STALLING_MOVES)})

    def test_replacing_a_stalled_action_gets_the_drone_to_the_end(self):
        summary, _ = self.fly(1.0, watchdog=True)
        self.assertNotEqual(summary["summary"], "None", "still stalled")
        self.assertGreaterEqual(int(summary["replaced"]), 1)

    def test_replacing_an_action_set_past_the_time_its_length_needs_also_gets_it_there(self):
        summary, _ = self.fly(1.0, watchdog=False, timer=True)
        self.assertNotEqual(summary["summary"], "None", "still stalled")
        self.assertGreaterEqual(int(summary["replaced"]), 1)

    #: Step, urgency and moves of the actions a model's orbit policy gave on the wind farm
    #: (seed 0, all yaw 0, all Replace) up to the stall: the last one was given while the
    #: drone flew at about 3.3 m/s the other way.
    SWING_ACTIONS = [(0, 1.0, [2] * 6), (269, 0.9, [4, 4, 4, 2, 4, 4, 2, 4, 2, 4, 2, 2, 4, 2, 2, 2]),
                     (840, 0.9, [2, 2, 3, 2, 2, 3, 2, 2, 3, 2, 3, 2, 3, 3, 2, 3, 3, 3]),
                     (1631, 0.9, [3, 3, 3, 3, 1, 3, 3, 1, 3, 1, 3, 1, 1, 3, 1, 1, 1])]

    def test_an_action_given_while_flying_fast_the_other_way_can_stall_swinging(self):
        from bgen.runner.episode import build_sim
        sim = build_sim(VXS, EpisodeConfig(scenario="wind_farm", backend="embedded"), 0)
        agent, given = sim.agent, dict((step, (u, m)) for step, u, m in self.SWING_ACTIONS)
        xs, progress = [], set()
        for step in range(3800):
            if step in given:
                urgency, moves = given[step]
                agent.perform_oneshot_py(VXS.ActionIntent(urgency, 0.0, [VXS.MoveDir.from_code_py(m)
                                                                         for m in moves]))
            if agent.get_action_py() is not None:       # as the episode loop steps
                target = sim.chaser.step_chase_py(agent, 0.01)
                sim.dynamics.update_agent_dynamics_py(agent, sim.env, target, 0.01)
            if step >= 2600:
                self.assertIsNotNone(agent.get_action_py())
                progress.add(agent.get_action_py()._trajectory.progress)
                xs.append(agent.get_pos()[0])
        self.assertEqual(len(progress), 1, "the action advanced")
        self.assertGreater(max(xs) - min(xs), 2.0, "the drone did not swing")
        swings = sum(1 for a, b, c in zip(xs, xs[1:], xs[2:]) if (b - a) * (c - b) < 0)
        self.assertGreater(swings, 6)

    def test_the_same_path_at_urgency_09_ends(self):
        summary, _ = self.fly(0.9, watchdog=False)
        self.assertNotEqual(summary["summary"], "None")


class TestDiagonalStaircase(unittest.TestCase):
    """The prompt: an A* staircase on a diagonal flies close to the straight line."""

    def test_a_diagonal_plan_takes_the_straight_lines_time_within_20_percent(self):
        from bgen.runner.episode import make_dynamics
        for offset in ((30, 30, 0), (20, 20, -20)):
            with self.subTest(offset=offset):
                start = [0, 0, -40]
                end = [s + o for s, o in zip(start, offset)]
                agent = VXS.Agent(0)
                agent.set_hold_py(start, 0.0)
                chaser, env = VXS.FixedLookaheadChaser.default_py(), VXS.EnvState.default_py()
                dynamics = make_dynamics(VXS, True)
                plan = VXS.AStarActionPlanner(0).plan_action_py(VXS.VoxelGrid(), start, end, 0.9, 0.0)
                self.assertEqual(plan.len(), sum(abs(o) for o in offset))     # axis moves only
                agent.perform_oneshot_py(plan)
                steps = 0
                while agent.get_action_py() is not None and steps < 20_000:
                    target = chaser.step_chase_py(agent, 0.01)
                    dynamics.update_agent_dynamics_py(agent, env, target, 0.01)
                    steps += 1
                straight_s = math.dist(start, end) / (FACTS["cruise_mps_per_urgency"] * 0.9)
                self.assertLess(abs(steps * 0.01 - straight_s), 0.2 * straight_s)


class TestNumpyNamed(unittest.TestCase):
    def test_every_numpy_function_the_cheatsheet_names_is_offered_to_policies(self):
        named = set(re.findall(r"`numpy\.(\w+)`", cheatsheet()))
        self.assertIn("argwhere", named)
        offered = set(sandbox.NUMPY_NAMES) | {"linalg", "random", "ndarray"}
        self.assertEqual(named - offered, {"empty"})      # named as not offered
        self.assertNotIn("empty", sandbox.NUMPY_NAMES)


class TestPlanningForStandoff(unittest.TestCase):
    """The cheatsheet: the planner ignores SPARSE cells; padding p keeps p cells clear of FILLED
    and GROUND cells and the flown path p m from them; a padded origin next to one is refused."""

    def test_the_planner_plans_straight_through_foliage_but_not_through_a_filled_wall(self):
        wall = {(5, y, z): VXS.Cell.sparse() for y in range(-3, 4) for z in range(-3, 4)}
        through = VXS.AStarActionPlanner(0).plan_action_py(
            VXS.VoxelGrid.from_dict_py(wall), [0, 0, 0], [10, 0, 0], 0.8, 0.0)
        self.assertEqual(through.len(), 10)
        wall = {cell: VXS.Cell.filled() for cell in wall}
        around = VXS.AStarActionPlanner(0).plan_action_py(
            VXS.VoxelGrid.from_dict_py(wall), [0, 0, 0], [10, 0, 0], 0.8, 0.0)
        self.assertGreater(around.len(), 10)

    def test_a_padded_origin_next_to_a_filled_cell_is_refused(self):
        floor = VXS.VoxelGrid.from_dict_py({(x, y, 0): VXS.Cell.filled()
                                            for x in range(-3, 14) for y in range(-3, 4)})
        origin = [0, 0, -2]                      # the floor 2 cells below
        VXS.AStarActionPlanner(1).plan_action_py(floor, origin, [10, 0, -2], 0.8, 0.0)
        with self.assertRaises(Exception):
            VXS.AStarActionPlanner(2).plan_action_py(floor, origin, [10, 0, -2], 0.8, 0.0)

    def test_a_flight_along_a_padded_plan_stays_padding_metres_from_filled_and_ground(self):
        from bgen.runner import taskspec
        from bgen.runner.episode import build_sim
        config = EpisodeConfig(scenario="terrain", backend="embedded", use_px4=False)
        flown = 0
        for padding in (1, 2):
            for seed in range(8):
                sim = build_sim(VXS, config, seed)
                coords, bits = taskspec.world_cells(sim.world)
                solid = taskspec.CellDistance(
                    coords[(bits & (taskspec.FILLED_BIT | taskspec.GROUND_BIT)) != 0])
                try:
                    intent = VXS.AStarActionPlanner(padding).plan_action_py(
                        sim.world, list(sim.start), [int(round(v)) for v in sim.target], 0.9, 0.0)
                except Exception:
                    continue                     # start or target too close for this padding
                sim.agent.perform_oneshot_py(intent)
                closest = math.inf
                for _ in range(20_000):
                    if sim.agent.get_action_py() is None:
                        break
                    chase = sim.chaser.step_chase_py(sim.agent, 0.01)
                    sim.dynamics.update_agent_dynamics_py(sim.agent, sim.env, chase, 0.01)
                    closest = min(closest, solid.nearest(sim.agent.get_pos(), padding + 1)[0])
                with self.subTest(padding=padding, seed=seed):
                    self.assertIsNone(sim.agent.get_action_py(), "the plan was not flown to its end")
                    self.assertGreaterEqual(closest, padding)
                flown += 1
        self.assertGreaterEqual(flown, 10)


class TestWhereAnActionEnds(unittest.TestCase):
    """The system prompt: an action ends up to action_end_within_m from its end cell (planned
    flights in open sky to random cells up to 10 away, urgencies 0.3-1.0), and with no action
    the drone does not move (the runner steps the dynamics only under an action, as the
    reference's loop does)."""

    PLANS = 30

    def test_every_action_ends_within_the_stated_distance_and_the_bound_is_not_loose(self):
        from bgen.runner.episode import make_dynamics
        rng = random.Random(1)
        gaps = []
        for _ in range(self.PLANS):
            offset = [0, 0, 0]
            while offset == [0, 0, 0]:
                offset = [rng.randint(-10, 10) for _ in range(3)]
            start, urgency = [0, 0, -30], rng.choice([0.3, 0.5, 0.7, 0.8, 0.9, 1.0])
            end = [s + o for s, o in zip(start, offset)]
            agent = VXS.Agent(0)
            agent.set_hold_py(start, 0.0)
            chaser, env = VXS.FixedLookaheadChaser.default_py(), VXS.EnvState.default_py()
            dynamics = make_dynamics(VXS, True)       # as an episode makes them
            agent.perform_oneshot_py(VXS.AStarActionPlanner(0).plan_action_py(
                VXS.VoxelGrid(), start, end, urgency, 0.0))
            for _ in range(20_000):
                if agent.get_action_py() is None:
                    break
                target = chaser.step_chase_py(agent, 0.01)
                dynamics.update_agent_dynamics_py(agent, env, target, 0.01)
            gaps.append(math.dist(agent.get_pos(), end))
        self.assertLess(max(gaps), FACTS["action_end_within_m"])
        self.assertGreater(max(gaps), 0.6 * FACTS["action_end_within_m"])

    def test_with_no_action_left_the_drone_stays_where_the_action_ended(self):
        from bgen.runner.episode import ListSink, run_episode
        config = EpisodeConfig(max_steps=1500, scenario="terrain", start=(50, 50, -70),
                               target=(150, 50, -70), backend="embedded")
        sink = ListSink()
        outcome = run_episode(straight_flight_policy(8, 0.9), VXS, config, REACHABLE_TERRAIN_SEED,
                              sink)
        done = int(outcome.summary.policy_summary["summary"])
        self.assertLess(done, 1000)
        self.assertEqual({tuple(s["agent_pos"]) for s in sink.steps[done:]},
                         {tuple(sink.steps[done]["agent_pos"])})


ACTION_SEEN_POLICY = """
import voxelsim as vxs

SEEN = []
PERFORM = {perform}


def act(t, agent, world, fw, env, helpers):
    SEEN.append(agent.get_action_py() is not None)
    if len(SEEN) == 1:
        intent = vxs.ActionIntent(0.9, 0.0, [vxs.MoveDir.Forward] * 3)
        if not PERFORM:
            return intent, "Replace"
        agent.perform_oneshot_py(intent)
        SEEN.append(agent.get_action_py() is not None)
    return None


def collect(step_ctx):
    return {{}}


def finalize(ep_ctx):
    return {{"seen": " ".join(str(int(s)) for s in SEEN[:3])}}
"""


class TestWhenAnActionShows(unittest.TestCase):
    """The cheatsheet: an intent act() returns shows in get_action_py() from the next act()
    call; one performed inside act() shows at once."""

    def seen(self, perform: bool) -> str:
        from bgen.runner.episode import ListSink, run_episode
        config = EpisodeConfig(max_steps=2, scenario="terrain", start=(50, 50, -70),
                               backend="embedded")
        outcome = run_episode(ACTION_SEEN_POLICY.format(perform=perform), VXS, config,
                              REACHABLE_TERRAIN_SEED, ListSink())
        return outcome.summary.policy_summary["seen"]

    def test_a_returned_intent_shows_next_call_and_a_performed_one_at_once(self):
        self.assertEqual(self.seen(perform=False), "0 1")      # none, then it shows next call
        self.assertEqual(self.seen(perform=True), "0 1 1")     # shows right after performing
        self.assertIn("shows it\nfrom the next act() call on", cheatsheet())


class TestWindFarmHeights(unittest.TestCase):
    def test_the_wind_farm_terrain_heights_the_prompt_states(self):
        from bgen.sim import worldcache
        world = worldcache.world(VXS, "wind_farm", 0, None)
        coords, _ = world._arrays()
        coords = coords.astype(float)
        away = np.ones(len(coords), bool)
        for x, y, _ in scenarios.TURBINES:
            away &= np.hypot(coords[:, 0] - x, coords[:, 1] - y) > 3
        terrain = coords[away]
        self.assertEqual(terrain[:, 2].min(), prompt_module.WIND_FARM_TERRAIN_TOP_Z)
        keys = terrain[:, 0] * 10_000 + terrain[:, 1]
        tops = {}
        for key, z in zip(keys.tolist(), terrain[:, 2].tolist()):
            tops[key] = min(z, tops.get(key, z))
        self.assertEqual(float(np.median(list(tops.values()))),
                         prompt_module.WIND_FARM_GROUND_MEDIAN_Z)
        self.assertIn("ground and trees reach at most z = -46 away", prompt_module.SCENARIO_TEXT[
            "wind_farm"])


class TestBeyondTheWorld(unittest.TestCase):
    def test_a_snapshot_past_the_generated_world_reads_empty_cells(self):
        ground = scenarios.terrain_world(VXS, REACHABLE_TERRAIN_SEED)
        for centre in ([5000, 5000, -20], [50, 50, -3000], [-400, 50, 10]):
            with self.subTest(centre=centre):
                self.assertEqual(ground.dense_snapshot_py(centre, [1, 1, 1]).data_py(), [0] * 27)
        edge = ground.dense_snapshot_py([0, 0, 0], [3, 3, 3]).data_py()
        self.assertEqual(len(edge), 343)
        self.assertIn("cells there read 0, like any empty cell", cheatsheet())


class TestStatedNumbers(unittest.TestCase):
    """Every number in FACTS (the cheatsheet's and the system prompt's) against the backend."""

    @classmethod
    def setUpClass(cls):
        from bgen.runner.episode import ListSink, run_episode
        cls.flights, cls.other_flights, cls.end_gaps = {}, {}, []
        up, stairs = "[vxs.MoveDir.Up]", "[vxs.MoveDir.Forward, vxs.MoveDir.Right]"
        for moves, urgency, pattern in ((20, 0.5, None), (20, 0.9, None), (40, 1.0, None),
                                        (5, 0.9, None), (20, 0.9, up), (20, 0.9, stairs)):
            config = EpisodeConfig(max_steps=2500, scenario="terrain", start=(50, 50, -70),
                                   target=(150, 50, -70), backend="embedded")
            sink = ListSink()
            source = straight_flight_policy(moves, urgency, *([pattern] if pattern else []))
            outcome = run_episode(source, VXS, config, REACHABLE_TERRAIN_SEED, sink)
            done = int(outcome.summary.policy_summary["summary"])
            path = [s["agent_pos"] for s in sink.steps[:done]]
            flown = sum(math.dist(a, b) for a, b in zip(path, path[1:]))
            if pattern is None:
                cls.flights[(moves, urgency)] = (done, flown)
                cls.end_gaps.append(math.dist(sink.steps[done]["agent_pos"], (50 + moves, 50, -70)))
            else:
                cls.other_flights[pattern] = (done, flown)

    def within(self, measured, stated, share=0.2):
        self.assertLessEqual(abs(measured - stated), share * stated, f"measured {measured}, stated {stated}")

    def test_every_fact_is_stated_and_no_placeholder_is_left(self):
        text = cheatsheet() + build_system_prompt()
        self.assertNotIn("{{", text)
        used = set(re.findall(r"\{\{(\w+)\}\}", cheatsheet_source() + prompt_module.SYSTEM_PROMPT))
        self.assertEqual(used, set(FACTS))

    def test_cruise_speed_by_urgency_matches_a_real_flight_within_20_percent(self):
        for (moves, urgency), (done, flown) in self.flights.items():
            if moves < 20:
                continue
            with self.subTest(moves=moves, urgency=urgency):
                cruise = flown / ((done - FACTS["plan_start_steps"]) * FACTS["delta_s"])
                self.within(cruise, FACTS["cruise_mps_per_urgency"] * urgency)
        done, flown = self.flights[(20, 0.9)]
        self.within(flown / ((done - FACTS["plan_start_steps"]) * FACTS["delta_s"]), FACTS["cruise_mps_at_09"])

    def test_steps_for_a_plan_of_n_cells_match_real_flights_within_20_percent(self):
        for (moves, urgency), (done, _) in self.flights.items():
            with self.subTest(moves=moves, urgency=urgency):
                self.within(done, FACTS["plan_start_steps"] + FACTS["steps_per_cell"] * moves / urgency)
        self.within(self.flights[(20, 0.9)][0], FACTS["steps_20_cells_at_09"])

    def test_the_speed_is_the_same_upward_and_a_winding_path_takes_fewer_steps(self):
        stated = FACTS["plan_start_steps"] + FACTS["steps_per_cell"] * 20 / 0.9
        self.within(self.other_flights["[vxs.MoveDir.Up]"][0], stated)
        self.assertLess(self.other_flights["[vxs.MoveDir.Forward, vxs.MoveDir.Right]"][0], stated)

    def test_a_straight_action_ends_within_the_stated_distance_of_its_end_cell(self):
        self.assertEqual(len(self.end_gaps), 4)
        for gap in self.end_gaps:
            self.assertLess(gap, FACTS["action_end_within_m"])

    def test_the_step_budget_and_step_length_are_the_runners_defaults(self):
        config = EpisodeConfig()
        self.assertEqual((FACTS["max_steps"], FACTS["delta_s"]), (config.max_steps, config.delta))
        self.assertEqual(FACTS["act_budget_s"], config.act_budget_s)
        self.assertEqual(FACTS["max_steps_s"], config.max_steps * config.delta)

    def test_collisions_extents_below_the_limit_work_and_the_limit_panics_as_stated(self):
        limit = FACTS["collision_extent_limit"]
        world = VXS.VoxelGrid()
        self.assertEqual(world.collisions_py([0.0, 0.0, 0.0], [limit - 0.01] * 3), [])
        for dims in ([limit, 0.3, 0.3], [0.3, 0.3, limit], [0.3, 0.3, 2.5]):
            with self.subTest(dims=dims):
                with self.assertRaises(BaseException) as caught:
                    world.collisions_py([0.0, 0.0, 0.0], dims)
                self.assertNotIsInstance(caught.exception, Exception)
                self.assertIn(str(caught.exception), cheatsheet())

    def test_the_planner_limit_is_the_backends(self):
        from bgen.sim.embedded import planner
        self.assertEqual(FACTS["planner_expansions"], planner.MAX_EXPANSIONS)


class TestPromptEpisodes(unittest.TestCase):
    def test_the_terrain_prompt_for_seeds_0_to_2_names_the_starts_and_targets_flown(self):
        from bgen.orchestrator.loop import LoopConfig, _task_of
        from bgen.runner.episode import as_coordinate, build_sim
        episode = EpisodeConfig(scenario="terrain", backend="embedded")
        task = _task_of(LoopConfig(user_goal="Reach the target.", seeds=(0, 1, 2), episode=episode))
        user = build_user_prompt(task, ContextPack(cheatsheet="", template=""))
        starts = set()
        for seed in (0, 1, 2):
            sim = build_sim(VXS, episode, seed)
            start, target = as_coordinate(sim.start), as_coordinate(sim.target)
            starts.add(tuple(start))
            with self.subTest(seed=seed):
                self.assertIn(f"seed {seed}: start {start}, target {target}", user)
        self.assertEqual(len(starts), 3)          # the seeds really differ, and the prompt says so
        self.assertIn("Starts and targets differ per seed", user)
        self.assertIn("config['start'] and config['target']", user)
