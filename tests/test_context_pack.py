"""Specification of the context pack given to the LLM, and of the prompts built from it.

The cheatsheet's python blocks are executed line by line against the embedded backend (every
statement must run, so every error it teaches is really raised); the template and every
example are loaded by the sandbox and flown in real episodes by the runner.
"""

from __future__ import annotations

import ast
import re
import sys
import tempfile
import unittest
from pathlib import Path

from bgen.llm.context import (EXAMPLE_NAMES, ContextPack, cheatsheet, cheatsheet_code_blocks,
                              choose_examples, example, load_pack, policy_template)
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
                       "is `None` while the agent holds", "takes exactly three arguments"):
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
        for phrase in ("Reach the target while minimizing collisions.", "The target is [60, 60, -20]",
                       "starts holding at voxel [50, 50, -20]", "SCENARIO: terrain", "5000 steps",
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
