"""Specification of the policy sandbox (bgen/runner/sandbox.py).

Validator rules, builtins, the import mapping, the contract, act()/collect() result checks,
and a breadth-first walk proving that nothing a policy can reach is a real module or a
dangerous function. The escape corpus (tests/test_escape_corpus.py) attacks the same layers
with whole policies, through the real worker where resources and processes are involved.
"""

from __future__ import annotations

import builtins
import collections
import importlib
import io
import os
import socket
import subprocess
import sys
import types
import unittest

import bgen.sim
from bgen.errors import PolicyError, PolicyLoadError
from bgen.runner import sandbox
from bgen.runner.sandbox import (
    Helpers, attribute_denial, check_act_result, check_notes, load_policy, validate_source)

VXS = bgen.sim.load_backend("embedded")

MINIMAL = """
def act(t, agent, world, fw, env, helpers):
    return None

def collect(step_ctx):
    return {}

def finalize(ep_ctx):
    return {"summary": "done"}
"""


def load(source: str, **kwargs):
    return load_policy(source, VXS, **kwargs)


def load_error(source: str) -> PolicyLoadError:
    try:
        load(source)
    except PolicyLoadError as error:
        return error
    raise AssertionError(f"policy loaded but should not have:\n{source}")


def validation_error(source: str) -> PolicyLoadError:
    try:
        validate_source(source)
    except PolicyLoadError as error:
        return error
    raise AssertionError(f"source validated but should not have:\n{source}")


def run_body(body: str, **kwargs):
    """Load MINIMAL plus ``body`` and return the policy."""
    return load(MINIMAL + "\n" + body, **kwargs)


# ---------------------------------------------------------------------------------------------
# Validator
# ---------------------------------------------------------------------------------------------


class ValidatorRejectsByRule(unittest.TestCase):
    # (source, rule, line)
    CASES = [
        ("x = ().__class__", "underscore-name", 1),
        ("x = [].__class__.__base__.__subclasses__()", "underscore-name", 1),
        ("def f():\n    return f.__globals__", "underscore-name", 2),
        ("x = __builtins__", "underscore-name", 1),
        ("x = __import__('os')", "underscore-name", 1),
        ("__secret = 1", "underscore-name", 1),
        ("def __helper():\n    pass", "underscore-name", 1),
        ("class A:\n    def __del__(self):\n        pass", "underscore-name", 2),
        ("class A:\n    def __getattr__(self, name):\n        pass", "underscore-name", 2),
        ("class __Hidden:\n    pass", "underscore-name", 1),
        ("def f(__x):\n    pass", "underscore-name", 1),
        ("def f(*__args):\n    pass", "underscore-name", 1),
        ("def f(**__kw):\n    pass", "underscore-name", 1),
        ("f = lambda __q: __q", "underscore-name", 1),
        ("print(__flag=1)", "underscore-name", 1),
        ("import voxelsim as _v", "underscore-name", 1),
        ("from voxelsim import _trusted", "underscore-name", 1),
        ("from voxelsim import MoveDir as _M", "underscore-name", 1),
        ("import _thread", "underscore-name", 1),
        ("from __future__ import division", "underscore-name", 1),
        ("def f():\n    global __g\n    __g = 1", "underscore-name", 2),
        ("try:\n    pass\nexcept Exception as __e:\n    pass", "underscore-name", 3),
        ("match 1:\n    case int(__class__=c):\n        pass", "underscore-name", 2),
        ("match 1:\n    case {'a': 1, **__rest}:\n        pass", "underscore-name", 2),
        ("match [1]:\n    case [*__tail]:\n        pass", "underscore-name", 2),
        ("match 1:\n    case __x:\n        pass", "underscore-name", 2),
        ("x = (i for i in []).gi_frame", "frame-attribute", 1),
        ("x = (i for i in []).gi_code", "frame-attribute", 1),
        ("def f(c):\n    return c.cr_frame", "frame-attribute", 2),
        ("def f(a):\n    return a.ag_frame", "frame-attribute", 2),
        ("def f(fr):\n    return fr.f_globals", "frame-attribute", 2),
        ("def f(tb):\n    return tb.tb_frame", "frame-attribute", 2),
        ("def f(code):\n    return code.co_consts", "frame-attribute", 2),
        ("match 1:\n    case object(gi_frame=g):\n        pass", "frame-attribute", 2),
        ("x = '{0.__class__}'.format(1)", "denied-attribute", 1),
        ("x = '{a}'.format_map({})", "denied-attribute", 1),
        ("x = str.format", "denied-attribute", 1),
        ("x = int.mro()", "denied-attribute", 1),
        ("def f(a):\n    a.tofile('/tmp/x')", "denied-attribute", 2),
        ("def f(a):\n    a.dump('/tmp/x')", "denied-attribute", 2),
        ("def f(a):\n    return a.ctypes", "denied-attribute", 2),
        ("import numpy\nx = numpy.lib", "denied-attribute", 2),
        ("x = getattr(1, 'real')", "forbidden-name", 1),
        ("x = eval('1')", "forbidden-name", 1),
        ("exec('x = 1')", "forbidden-name", 1),
        ("x = open", "forbidden-name", 1),
        ("x = type(1)", "forbidden-name", 1),
        ("x = vars()", "forbidden-name", 1),
        ("x = globals()", "forbidden-name", 1),
        ("x = compile('1', 'f', 'eval')", "forbidden-name", 1),
        ("try:\n    pass\nexcept BaseException:\n    pass", "forbidden-name", 3),
        ("import os", "import", 1),
        ("import os.path", "import", 1),
        ("from subprocess import run", "import", 1),
        ("import importlib", "import", 1),
        ("from . import sibling", "import", 1),
        ("import numpy.testing", "import", 1),
        ("async def f():\n    pass", "node-type", 1),
        ("x = '{0.real}'.format(1)", "denied-attribute", 1),
        ("x = np.sqrt(a, where=m)", "uninitialised-memory", 1),
        ("async def f():\n    pass", "node-type", 1),
        ("try:\n    pass\nexcept:\n    pass", "bare-except", 3),
        ("class A(metaclass=print):\n    pass", "class-keywords", 1),
    ]
    if sys.version_info >= (3, 11):
        CASES.append(("try:\n    pass\nexcept* ValueError:\n    pass", "node-type", 1))

    def test_each_rule_names_its_line(self):
        for source, rule, line in self.CASES:
            with self.subTest(source=source):
                error = validation_error(source)
                self.assertEqual(error.rule, rule, str(error))
                self.assertEqual(error.lineno, line, str(error))
                self.assertTrue(str(error).startswith(f"line {line}: "), str(error))
                self.assertTrue(str(error).endswith(f"(rule: {rule})") or "\nalso: " in str(error),
                                str(error))

    def test_every_rule_used_here_is_documented_in_rules(self):
        for _, rule, _ in self.CASES:
            with self.subTest(rule=rule):
                self.assertIn(rule, sandbox.RULES)

    def test_underscore_attribute_message_names_line_rule_and_attribute(self):
        source = "\n" * 11 + "x = (1).__class__"
        self.assertEqual(str(validation_error(source)),
                         "line 12: attribute names starting with '_' are not allowed: "
                         "'__class__' (rule: underscore-name)")

    def test_import_message_names_the_module_and_what_is_allowed(self):
        self.assertEqual(str(validation_error("import socket")),
                         "line 1: import of 'socket' is not allowed; policies may import "
                         "collections, dataclasses, functools, heapq, itertools, math, numpy, "
                         "random, time, typing, voxelsim (and numpy.linalg, numpy.random) "
                         "(rule: import)")

    def test_forbidden_name_message_gives_a_hint(self):
        self.assertEqual(str(validation_error("x = getattr(1, 'real')")),
                         "line 1: 'getattr' is not available in policies; use attribute access "
                         "(rule: forbidden-name)")

    def test_format_message_suggests_f_strings(self):
        self.assertEqual(str(validation_error("x = 'a{0.real}'.format(1)")),
                         "line 1: attribute 'format' is not allowed: str.format reaches "
                         "attributes through its replacement fields; use an f-string "
                         "(rule: denied-attribute)")

    def test_node_type_message_names_the_construct(self):
        self.assertEqual(str(validation_error("async def f():\n    pass")),
                         "line 1: async functions are not allowed (rule: node-type)")

    def test_bare_except_message_says_what_to_catch(self):
        self.assertEqual(str(validation_error("try:\n    pass\nexcept:\n    pass")),
                         "line 3: bare 'except:' is not allowed; catch Exception "
                         "(or voxelsim.PanicException) instead (rule: bare-except)")

    def test_first_violation_by_line_leads_and_others_follow(self):
        error = validation_error("a = 1\nb = x.__dict__\nimport os\n")
        self.assertEqual(error.lineno, 2)
        self.assertEqual(str(error).splitlines(), [
            "line 2: attribute names starting with '_' are not allowed: '__dict__' "
            "(rule: underscore-name)",
            "also: line 3: import of 'os' is not allowed; policies may import collections, "
            "dataclasses, functools, heapq, itertools, math, numpy, random, time, typing, "
            "voxelsim (and numpy.linalg, numpy.random) (rule: import)",
        ])

    def test_fullwidth_underscores_are_normalized_and_rejected(self):
        # Python applies NFKC to identifiers: '_＿class＿＿' is '__class__'.
        error = validation_error("x = (1)._\uff3fclass\uff3f\uff3f")
        self.assertEqual(error.rule, "underscore-name")
        self.assertIn("'__class__'", str(error))

    def test_fullwidth_module_name_is_normalized_and_rejected(self):
        error = validation_error("import \uff4f\uff53")  # 'ｏｓ'
        self.assertEqual((error.rule, str(error).split(";")[0]),
                         ("import", "line 1: import of 'os' is not allowed"))


class ValidatorAcceptsOrdinaryCode(unittest.TestCase):
    CASES = [
        "for _ in range(3):\n    pass",
        "x = [i * i for i in range(5) if i % 2]",
        "d = {k: v for k, v in zip('ab', [1, 2])}",
        "s = {1, 2} | {3}",
        "g = sum(i for i in range(4))",
        "x = 3 if True else 4",
        "x = (y := 5) + 1",
        "x = 'a %s b %(k)s' if False else '%(k)s' % {'k': 1}",
        "x = f'{1.5:.2f} {[1, 2]!r}'",
        "def f(a, /, b, *args, c=1, **kwargs):\n    return a",
        "def gen():\n    yield 1\n    yield from [2, 3]",
        "class Plan(Exception):\n    pass",
        "class Memo:\n    count = 0\n    def bump(self):\n        return self.count + 1",
        "def f():\n    x = 1\n    def g():\n        nonlocal x\n        x += 1\n    g()",
        "counter = 0\ndef f():\n    global counter\n    counter += 1",
        "try:\n    1 / 0\nexcept (ZeroDivisionError, ValueError) as e:\n    msg = str(e)\n"
        "else:\n    pass\nfinally:\n    pass",
        "assert 1 == 1, 'fine'",
        "raise ValueError('x') from None" if False else "x = None",
        "match [1, 2]:\n    case [a, *rest]:\n        pass\n    case {'k': v}:\n        pass\n"
        "    case int() | float():\n        pass\n    case _:\n        pass",
        "del_me = [1]\ndel del_me[0]",
        "import voxelsim as vxs\nfrom voxelsim import MoveDir, ActionIntent",
        "import math, typing, random, collections, heapq, itertools",
        "import numpy as np\nimport numpy.linalg as la\nfrom numpy.linalg import norm",
        "from math import *",
        "from __future__ import annotations\nx: int = 1",
        "dir = 'up'\nprint(dir)",  # binding a forbidden builtin's name makes it the policy's own
        "def f(type):\n    return type",
        "x = 1 @ 1 if False else 2",
        "lst = [1, 2, 3]\nlst[1:2] = []\nx = lst[::-1]",
    ]

    def test_ordinary_constructs_validate(self):
        for source in self.CASES:
            with self.subTest(source=source):
                validate_source(source)


class StaticContractCheck(unittest.TestCase):
    """check_contract_source: the contract as far as the source shows it, without running it."""

    BODY = ("def act(t, agent, world, fw, env, helpers):\n    return None\n\n"
            "def collect(step_ctx):\n    return {}\n\n"
            "def finalize(ep_ctx):\n    return {}\n")

    def test_what_the_source_shows_broken_is_refused_with_rule_and_line(self):
        cases = [
            (self.BODY.replace("def collect(", "def gather("), None,
             "policy must define collect(step_ctx); found no 'collect' (rule: contract)"),
            (self.BODY.replace("def act(t, agent, world, fw, env, helpers)", "def act(t)"), 1,
             "line 1: policy must define act(t, agent, world, fw, env, helpers); found act(t) (rule: contract)"),
            (self.BODY + "\ndef init(config, extra):\n    pass\n", 10,
             "line 10: policy may define init(config); found init(config, extra) (rule: contract)"),
        ]
        for source, lineno, message in cases:
            with self.subTest(message=message):
                with self.assertRaises(PolicyLoadError) as caught:
                    sandbox.check_contract_source(source)
                self.assertEqual((str(caught.exception), caught.exception.lineno, caught.exception.rule),
                                 (message, lineno, "contract"))

    def test_what_only_running_could_tell_is_left_to_the_worker(self):
        for source in (self.BODY,
                       self.BODY.replace("def collect(step_ctx):\n    return {}\n", "collect = dict\n"),
                       self.BODY.replace("def finalize(ep_ctx)", "def finalize(ep_ctx, *rest)"),
                       self.BODY + "\ndef init(config=None):\n    pass\n"):
            with self.subTest(source=source):
                sandbox.check_contract_source(source)

    def test_the_ast_rules_come_first(self):
        with self.assertRaises(PolicyLoadError) as caught:
            sandbox.check_contract_source("import os\n" + self.BODY)
        self.assertEqual((caught.exception.rule, caught.exception.lineno), ("import", 1))


class ValidatorSurvivesHostileInput(unittest.TestCase):
    CASES = [
        # (source, rule, message or None)
        ("x = 1\x00", "syntax",
         "policy source is not valid Python: source code string cannot contain null bytes "
         "(rule: syntax)" if sys.version_info >= (3, 11, 4) else None),
        ("def f(:\n    pass", "syntax", None),
        ("return 1", "syntax", "line 1: 'return' outside function (rule: syntax)"),
        ("x = " + "-" * 1000 + "1", "nesting",
         "line 1: code is nested more than 200 levels deep (rule: nesting)"),
        ("x = " + "-" * 100_000 + "1", "source-size",
         "policy source is 100005 characters, exceeds limit of 100000 (rule: source-size)"),
        ("x = " + "-" * 60_000 + "1", "nesting", None),
        ("x = " + "(" * 300 + ")" * 300, "nesting", None),
        ("x = " + "[" * 1000 + "]" * 1000, "nesting", None),
        ("x = 1" + "+1" * 5000, "nesting", None),
        ("if x:\n" + "".join(" " * (i + 1) + "if x:\n" for i in range(120)) + " " * 121 + "pass",
         "nesting", "line 101: too many levels of indentation (rule: nesting)"),
        ("x = '\ud800'", "syntax", None),  # a lone surrogate cannot even be encoded
    ]

    def test_every_failure_is_a_policy_load_error_with_a_rule(self):
        for source, rule, message in self.CASES:
            with self.subTest(source=source[:40]):
                if rule is None:
                    sandbox.compile_policy(source)
                    continue
                with self.assertRaises(PolicyLoadError) as caught:
                    sandbox.compile_policy(source)
                self.assertEqual(caught.exception.rule, rule, str(caught.exception))
                if message is not None:
                    self.assertEqual(str(caught.exception), message)

    def test_non_text_source_is_refused(self):
        with self.assertRaises(PolicyLoadError) as caught:
            validate_source(b"x = 1")
        self.assertEqual(str(caught.exception),
                         "policy source must be text (str); actual: bytes (rule: source-type)")


class AnnotationsAreStripped(unittest.TestCase):
    def test_annotations_never_run_and_are_not_validated(self):
        policy = run_body(
            "def helper(x: __import__('os').system('false') = 1) -> _Private:\n"
            "    y: _Whatever = x\n"
            "    z: 'lambda: 1'\n"
            "    return y\n"
            "value = helper()\n")
        self.assertEqual(policy.namespace["value"], 1)

    def test_annotated_assignment_without_value_is_dropped(self):
        policy = run_body("gain: float\nlimit: int = 3\n")
        self.assertNotIn("gain", policy.namespace)
        self.assertEqual(policy.namespace["limit"], 3)

    def test_future_annotations_import_is_accepted(self):
        policy = load("from __future__ import annotations\n" + MINIMAL)
        self.assertTrue(callable(policy.act))


# ---------------------------------------------------------------------------------------------
# Builtins and output
# ---------------------------------------------------------------------------------------------


class SafeBuiltins(unittest.TestCase):
    REQUIRED = ("round", "sorted", "reversed", "pow", "divmod", "hasattr", "sum", "min", "max",
                "abs", "len", "range", "zip", "enumerate", "map", "filter", "any", "all",
                "isinstance", "list", "dict", "tuple", "set", "frozenset", "str", "int",
                "float", "bool", "print", "Exception", "ValueError", "TypeError", "KeyError",
                "IndexError", "ZeroDivisionError", "AttributeError", "RuntimeError",
                "ArithmeticError", "LookupError", "StopIteration")
    ABSENT = ("getattr", "setattr", "delattr", "vars", "dir", "globals", "locals", "eval",
              "exec", "compile", "open", "input", "breakpoint", "help", "type", "memoryview",
              "BaseException", "exit", "quit", "id", "bytearray")

    def setUp(self):
        self.table = sandbox.sandbox_globals(VXS)["__builtins__"]

    def test_ordinary_builtins_are_present(self):
        for name in self.REQUIRED:
            with self.subTest(name=name):
                self.assertIn(name, self.table)

    def test_introspection_and_io_builtins_are_absent(self):
        for name in self.ABSENT:
            with self.subTest(name=name):
                self.assertNotIn(name, self.table)

    def test_builtins_import_is_the_restricted_hook(self):
        self.assertIsNot(self.table["__import__"], builtins.__import__)

    def test_ordinary_code_runs(self):
        policy = run_body(
            "values = sorted([3.14159, 2.5, 1], reverse=True)\n"
            "rounded = [round(v, 2) for v in reversed(values)]\n"
            "q, r = divmod(17, 5)\n"
            "p = pow(2, 10, 1000)\n"
            "try:\n    [][1]\nexcept IndexError as e:\n    caught = str(e)\n"
            "pairs = dict(enumerate(map(abs, filter(None, [-1, 0, -2]))))\n"
            "ok = all([isinstance(p, int), any([False, True]), hasattr(values, 'append')])\n"
            "text = f'{q}-{r}' + ' %d' % p\n")
        ns = policy.namespace
        self.assertEqual(ns["rounded"], [1, 2.5, 3.14])
        self.assertEqual((ns["q"], ns["r"], ns["p"], ns["caught"]),
                         (3, 2, 24, "list index out of range"))
        self.assertEqual((ns["pairs"], ns["ok"], ns["text"]), ({0: 1, 1: 2}, True, "3-2 24"))

    def test_hasattr_reports_no_private_or_denied_attribute(self):
        policy = run_body(
            "answers = [hasattr(1, '__class__'), hasattr(act, '__globals__'),\n"
            "           hasattr((i for i in []), 'gi_frame'), hasattr('', 'format'),\n"
            "           hasattr([], 'append')]\n")
        self.assertEqual(policy.namespace["answers"], [False, False, False, False, True])

    def test_hasattr_needs_a_string_name(self):
        error = load_error(MINIMAL + "x = hasattr(1, 2)\n")
        self.assertIn("TypeError while loading: hasattr(): attribute name must be string",
                      str(error))


class CapturedPrint(unittest.TestCase):
    def test_print_is_captured_not_written_to_stdout(self):
        stdout = io.StringIO()
        sys_stdout, sys.stdout = sys.stdout, stdout
        try:
            policy = run_body("print('hello', 42, sep='-')\nprint('x', end='')\n")
        finally:
            sys.stdout = sys_stdout
        self.assertEqual(stdout.getvalue(), "")
        self.assertEqual(policy.output(), "hello-42\nx")

    def test_output_is_capped_with_a_marker(self):
        policy = run_body("for i in range(1000):\n    print('0123456789')\n", print_limit=25)
        self.assertEqual(policy.output(),
                         "0123456789\n0123456789\n012\n[output truncated at 25 characters]\n")

    def test_prints_from_act_are_captured_too(self):
        policy = load(MINIMAL.replace("return None", "print('step', t)\n    return None"))
        policy.act(0.5, None, None, None, None, None)
        self.assertEqual(policy.output(), "step 0.5\n")

    def test_print_to_a_file_is_refused(self):
        error = load_error(MINIMAL + "class F:\n    def write(self, s):\n        pass\n"
                                     "print('x', file=F())\n")
        self.assertIn("print(): file= is not available in policies", str(error))


# ---------------------------------------------------------------------------------------------
# Imports and stand-in modules
# ---------------------------------------------------------------------------------------------


class ImportMapping(unittest.TestCase):
    def test_voxelsim_forms_resolve_to_the_backend_objects(self):
        policy = run_body("import voxelsim\nimport voxelsim as vxs\n"
                          "from voxelsim import MoveDir, ActionIntent\n")
        ns = policy.namespace
        self.assertIs(ns["vxs"], ns["voxelsim"])
        self.assertIsInstance(ns["vxs"], sandbox.StandIn)
        self.assertIs(ns["MoveDir"], VXS.MoveDir)
        # ActionIntent is a recording constructor (urgency and yaw go to the replay's ledger)
        intent = ns["ActionIntent"](1.0, 0.5, [VXS.MoveDir.Up])
        self.assertIs(ns["vxs"].ActionIntent, ns["ActionIntent"])
        self.assertIs(type(intent), VXS.ActionIntent)
        self.assertIsInstance(intent, ns["ActionIntent"])
        self.assertEqual(policy.intents.describe(intent),
                         {"urgency": 1.0, "yaw": 0.5, "moves": [5]})

    def test_numpy_index_functions_work_on_a_grid_as_policies_use_them(self):
        policy = run_body(
            "import numpy as np\n"
            "def cells():\n"
            "    grid = np.zeros((3, 3, 3), dtype=np.int64)\n"
            "    grid[1, 2, 0] = 5\n"
            "    found = np.argwhere(grid)\n"
            "    flat = np.flatnonzero(grid)\n"
            "    back = np.unravel_index(flat, grid.shape)\n"
            "    return (found.tolist(), np.ravel_multi_index(back, grid.shape).tolist(),\n"
            "            int(np.searchsorted(np.array([0, 2, 4]), 3)), np.bincount([0, 2, 2]).tolist(),\n"
            "            np.isin([1, 5], grid).tolist(), int(np.nanargmin([3.0, np.nan, 1.0])))\n")
        self.assertEqual(policy.namespace["cells"](),
                         ([[1, 2, 0]], [15], 2, [1, 0, 2], [False, True], 2))

    def test_numpy_where_is_refused_without_an_out_array_also_through_ufunc_methods(self):
        policy = run_body(
            "import numpy as np\n"
            "def attempts():\n"
            "    a = np.arange(8.0)\n"
            "    mask = {'where': np.zeros((8, 8), dtype=bool)}\n"
            "    refused = []\n"
            "    for call in (lambda: np.maximum.outer(a, a, **mask), lambda: np.power(a, 2.0, **mask),\n"
            "                 lambda: np.add.reduce(a, **{'where': a > 2, 'initial': 0.0})):\n"
            "        try:\n"
            "            call()\n"
            "        except TypeError as error:\n"
            "            refused.append(str(error))\n"
            "    out = np.zeros(8)\n"
            "    np.add(a, a, out=out, **{'where': a > 5})\n"
            "    total = np.sum(a, **{'where': a > 5})\n"
            "    return len(refused), out.tolist(), float(total), float(np.maximum.reduce(a))\n")
        refused, out, total, top = policy.namespace["attempts"]()
        self.assertEqual(refused, 3)
        self.assertEqual(out, [0, 0, 0, 0, 0, 0, 12, 14])
        self.assertEqual((total, top), (13.0, 7.0))

    def test_stand_ins_are_not_real_modules(self):
        policy = run_body("import math, typing, voxelsim, random, numpy, collections\n")
        for name in ("math", "typing", "voxelsim", "random", "numpy", "collections"):
            with self.subTest(module=name):
                self.assertIsNot(policy.namespace[name], sys.modules.get(name))
                self.assertEqual(repr(policy.namespace[name]),
                                 f"<module '{name}' (policy sandbox)>")

    def test_stand_in_takes_the_backend_module_given(self):
        fake = types.ModuleType("fakesim")
        fake.MoveDir = "fake MoveDir"
        fake.ActionIntent = object
        fake.__all__ = ["MoveDir", "ActionIntent"]
        policy = load_policy(MINIMAL + "from voxelsim import MoveDir\n", fake)
        self.assertEqual(policy.namespace["MoveDir"], "fake MoveDir")

    def test_backend_module_imports_and_network_clients_are_not_exposed(self):
        standin = sandbox.build_standins(VXS)["voxelsim"]
        for name in ("convert", "intent", "world", "RendererClient", "AsyncRendererClient",
                     "annotations", "np", "numpy"):
            with self.subTest(name=name):
                self.assertNotIn(name, standin.__all__)

    def test_typing_offers_no_path_to_sys_or_type_hints(self):
        for source, message in [
            ("import typing\nx = typing.sys\n",
             "line 2: policy module raised AttributeError while loading: module 'typing' has "
             "no attribute 'sys' in the policy sandbox (rule: load-exception)"),
            ("from typing import get_type_hints\n",
             "line 1: cannot import name 'get_type_hints' from 'typing' in the policy sandbox "
             "(rule: import)"),
            ("from typing import NamedTuple\n",
             "line 1: cannot import name 'NamedTuple' from 'typing' in the policy sandbox "
             "(rule: import)"),
        ]:
            with self.subTest(source=source):
                self.assertEqual(str(load_error(MINIMAL + source)).replace(
                    f"line {MINIMAL.count(chr(10)) + 1}", "line 1").replace(
                    f"line {MINIMAL.count(chr(10)) + 2}", "line 2"), message)

    def test_from_import_never_falls_back_to_real_submodules(self):
        # CPython retries a missing `from m import x` as sys.modules[m.__name__ + '.x'].
        for source in ("from numpy import lib", "from numpy import testing",
                       "from voxelsim import convert", "from collections import abc",
                       "from numpy import ctypeslib"):
            with self.subTest(source=source):
                error = load_error(source + "\n" + MINIMAL)
                self.assertEqual(error.rule, "import")
                self.assertIn("from the policy sandbox" if False else "in the policy sandbox",
                              str(error))

    def test_the_import_hook_refuses_what_the_validator_would(self):
        # The validator rejects `import socket` first; the hook is the second line of defence.
        hook = sandbox.make_import(sandbox.build_standins(VXS))
        with self.assertRaises(ImportError) as caught:
            hook("socket")
        self.assertEqual(str(caught.exception),
                         "import of 'socket' is not allowed; policies may import collections, "
                         "dataclasses, functools, heapq, itertools, math, numpy, random, time, "
                         "typing, voxelsim (and numpy.linalg, numpy.random)")
        for args in [("os", None, None, (), 0), ("voxelsim", None, None, (), 1),
                     ("voxelsim", None, None, ("_trusted",), 0), ("numpy", None, None, ("lib",), 0)]:
            with self.subTest(args=args):
                with self.assertRaises(ImportError):
                    hook(*args)

    def test_numpy_c_code_may_import_its_own_helpers_but_gets_nothing_back(self):
        # numpy imports numpy._core._internal lazily from C while a policy frame is current.
        error = load_error(MINIMAL + "import numpy as np\nnp.zeros(2, dtype=np.int64).astype(object).view(np.int64)\n")
        self.assertIn("TypeError while loading: view() to or from an object dtype is not "
                      "available in policies", str(error))
        hook = sandbox.make_import(sandbox.build_standins(VXS))
        self.assertIsNone(hook("numpy.linalg", {}, {}, [], 0))
        with self.assertRaises(ImportError):
            hook("os", {}, {}, [], 0)  # the C-style call shape does not open other packages

    def test_refused_import_inside_a_function_is_catchable(self):
        # `import numpy` passes validation; a backend without numpy would refuse it at run time.
        standins = sandbox.build_standins(VXS)
        del standins["numpy"]
        hook = sandbox.make_import(standins)
        with self.assertRaises(ImportError):
            hook("numpy")

    def test_stand_ins_are_read_only(self):
        error = load_error(MINIMAL + "import math\nmath.pi = 3\n")
        self.assertIn("AttributeError while loading: module 'math' is read-only in the policy "
                      "sandbox", str(error))

    def test_numpy_offers_arithmetic_but_no_file_io_or_raw_buffers(self):
        policy = run_body("import numpy as np\n"
                          "v = np.linalg.norm(np.array([3.0, 4.0]))\n"
                          "m = float(np.clip(np.mean(np.arange(10)), 0, 4))\n")
        self.assertEqual((policy.namespace["v"], policy.namespace["m"]), (5.0, 4.0))
        numpy_standin = policy.namespace["np"]
        for name in ("load", "save", "fromfile", "memmap", "ctypeslib", "lib",
                     "empty", "frombuffer", "set_printoptions", "testing"):
            with self.subTest(name=name):
                self.assertNotIn(name, numpy_standin.__all__)

    def test_numpy_random_offers_only_a_generator_seeded_per_episode(self):
        body = "import numpy as np\nvalue = float(np.random.default_rng().random())\n" \
               "fixed = float(np.random.default_rng(3).random())\n"
        first, again = run_body(body, seed=11).namespace, run_body(body, seed=11).namespace
        self.assertEqual(first["value"], again["value"])
        self.assertEqual(first["fixed"], run_body(body, seed=12).namespace["fixed"])
        self.assertEqual(run_body("import numpy as np\n").namespace["np"].random.__all__,
                         ["default_rng"])
        error = load_error(MINIMAL + "import numpy as np\nx = np.random.seed\n")
        self.assertIn("module 'numpy.random' has no attribute 'seed'", str(error))

    def test_numpy_types_are_offered_for_isinstance_only(self):
        policy = run_body("import numpy as np\nok = isinstance(np.zeros(2), np.ndarray)\n"
                          "scalar = isinstance(np.float64(1), np.floating)\n")
        self.assertEqual((policy.namespace["ok"], policy.namespace["scalar"]), (True, True))
        error = load_error(MINIMAL + "import numpy as np\nx = np.ndarray((2,))\n")
        self.assertIn("numpy.ndarray() cannot be called in policies; create arrays with "
                      "numpy.array()", str(error))

    def test_random_is_seeded_per_load_and_reproducible(self):
        body = "import random\nvalues = [random.random(), random.randint(1, 6)]\n" \
               "other = random.Random(7).random()\n"
        first = run_body(body, seed=11).namespace
        again = run_body(body, seed=11).namespace
        different = run_body(body, seed=12).namespace
        self.assertEqual(first["values"], again["values"])
        self.assertNotEqual(first["values"], different["values"])
        self.assertEqual(first["other"], different["other"])

    def test_star_import_copies_only_public_names(self):
        policy = run_body("from math import *\nx = sqrt(16)\n")
        self.assertEqual(policy.namespace["x"], 4.0)
        self.assertFalse([k for k in policy.namespace if k.startswith("_sandbox")])


# ---------------------------------------------------------------------------------------------
# Contract
# ---------------------------------------------------------------------------------------------


class ContractCheck(unittest.TestCase):
    def test_missing_functions_are_named_with_their_signature(self):
        cases = [
            ("def collect(c):\n    return {}\ndef finalize(e):\n    return {}\n",
             "policy must define act(t, agent, world, fw, env, helpers); found no 'act' "
             "(rule: contract)"),
            ("def act(t, a, w, f, e, h):\n    pass\ndef finalize(e):\n    return {}\n",
             "policy must define collect(step_ctx); found no 'collect' (rule: contract)"),
            ("def act(t, a, w, f, e, h):\n    pass\ndef collect(c):\n    return {}\n",
             "policy must define finalize(ep_ctx); found no 'finalize' (rule: contract)"),
            (MINIMAL + "act = 5\n",
             "policy must define act(t, agent, world, fw, env, helpers); found 'act' of type "
             "int (rule: contract)"),
            (MINIMAL + "init = 'setup'\n",
             "policy may define init(config); found 'init' of type str (rule: contract)"),
            (MINIMAL + "def act(t, agent):\n    return None\n",
             "policy must define act(t, agent, world, fw, env, helpers); found act(t, agent) "
             "(rule: contract)"),
            (MINIMAL + "def collect():\n    return {}\n",
             "policy must define collect(step_ctx); found collect() (rule: contract)"),
        ]
        for source, message in cases:
            with self.subTest(message=message):
                error = load_error(source)
                self.assertEqual((str(error), error.rule, error.lineno), (message, "contract", None))

    def test_init_is_optional(self):
        self.assertIsNone(load(MINIMAL).init)
        self.assertTrue(callable(load(MINIMAL + "def init(config):\n    pass\n").init))

    def test_flexible_signatures_are_accepted(self):
        load(MINIMAL + "def act(t, agent, world, fw, env, helpers=None, *rest):\n    pass\n")
        load(MINIMAL + "def act(*args):\n    pass\n")

    def test_exception_in_module_body_names_its_line(self):
        error = load_error(MINIMAL + "x = 1\ny = 1 / 0\n")
        line = MINIMAL.count("\n") + 2
        self.assertEqual(str(error), f"line {line}: policy module raised ZeroDivisionError while "
                                     "loading: division by zero (rule: load-exception)")
        self.assertEqual((error.lineno, error.rule), (line, "load-exception"))

    def test_backend_panic_in_module_body_is_a_load_error(self):
        error = load_error(MINIMAL + "import voxelsim as vxs\nvxs.ActionIntent(0.0, 0.0, [])\n")
        self.assertIn("policy module raised PanicException while loading: assertion failed: "
                      "urgency > 0.0", str(error))

    def test_worker_time_limit_exceptions_pass_through(self):
        class Deadline(BaseException):
            pass

        fake = types.ModuleType("fakesim")
        fake.Deadline = Deadline
        with self.assertRaises(Deadline):
            load_policy(MINIMAL + "from voxelsim import Deadline\nraise Deadline()\n", fake)

    def test_loaded_policy_runs_its_functions(self):
        policy = load(
            "import voxelsim as vxs\n"
            "state = {}\n"
            "def init(config):\n    state['target'] = config.get('target')\n"
            "def act(t, agent, world, fw, env, helpers):\n"
            "    return helpers.intent(0.5, 0.0, [vxs.MoveDir.Up, vxs.MoveDir.Forward]), 'Push'\n"
            "def collect(step_ctx):\n    return {'target': state['target']}\n"
            "def finalize(ep_ctx):\n    return {'summary': 'steps=' + str(ep_ctx['steps'])}\n")
        policy.init({"target": (1, 2, 3)})
        intent, mode = policy.check_act_result(policy.act(0.0, None, None, None, None,
                                                          Helpers(VXS)))
        self.assertEqual((intent.get_move_sequence(), mode),
                         ([VXS.MoveDir.Up, VXS.MoveDir.Forward], "Push"))
        self.assertEqual(check_notes(policy.collect({})), {"target": "(1, 2, 3)"})
        self.assertEqual(check_notes(policy.finalize({"steps": 4}), "finalize"),
                         {"summary": "steps=4"})


class ActResultCheck(unittest.TestCase):
    def setUp(self):
        self.intent = VXS.ActionIntent(1.0, 0.0, [VXS.MoveDir.Up])

    def test_accepted_forms_are_normalised(self):
        cases = [
            (None, None),
            (self.intent, (self.intent, "Replace")),
            ((self.intent, "Replace"), (self.intent, "Replace")),
            ((self.intent, "Push"), (self.intent, "Push")),
            ((self.intent, "push"), (self.intent, "Push")),
            ((None, "Replace"), None),
        ]
        for result, expected in cases:
            with self.subTest(result=result):
                self.assertEqual(check_act_result(result, VXS.ActionIntent), expected)

    def test_wrong_forms_say_what_was_expected_and_what_came(self):
        expected = "act() must return an ActionIntent, (intent, 'Replace'|'Push') or None"
        cases = [
            ("Up", f"{expected}; actual: str"),
            ([self.intent], f"{expected}; actual: list"),
            ((self.intent,), f"{expected}; actual: tuple of length 1"),
            ((self.intent, "Push", 1), f"{expected}; actual: tuple of length 3"),
            (("Up", "Push"), f"{expected}; actual: tuple (str, str)"),
            ((self.intent, "Append"), f"{expected}; actual: tuple with mode 'Append'"),
            ((self.intent, None), f"{expected}; actual: tuple with mode NoneType"),
            (VXS.MoveDir.Up, f"{expected}; actual: MoveDir"),
        ]
        for result, message in cases:
            with self.subTest(result=result):
                with self.assertRaises(PolicyError) as caught:
                    check_act_result(result, VXS.ActionIntent)
                self.assertEqual(str(caught.exception), message)

    def test_without_the_class_a_look_alike_name_is_what_counts(self):
        self.assertEqual(check_act_result(self.intent), (self.intent, "Replace"))

    def test_a_subclass_of_action_intent_is_refused_as_voxelsim_refuses_subclassing(self):
        # The runner calls intent methods after act() returned: a subclass's len() would run
        # policy code outside the time budget.
        class Endless(VXS.ActionIntent):
            def len(self):
                raise AssertionError("policy code ran")

        intent = Endless(1.0, 0.0, [VXS.MoveDir.Up])
        shown = "Endless (a subclass of ActionIntent; return ActionIntent itself)"
        expected = "act() must return an ActionIntent, (intent, 'Replace'|'Push') or None"
        for result, message in [(intent, f"{expected}; actual: {shown}"),
                                ((intent, "Push"), f"{expected}; actual: tuple ({shown}, str)")]:
            with self.subTest(result=type(result).__name__):
                with self.assertRaises(PolicyError) as caught:
                    check_act_result(result, VXS.ActionIntent)
                self.assertEqual(str(caught.exception), message)

    def test_a_str_subclass_mode_is_read_without_calling_its_methods(self):
        class Mode(str):
            def lower(self):
                raise AssertionError("policy code ran")

        self.assertEqual(check_act_result((self.intent, Mode("PUSH")), VXS.ActionIntent),
                         (self.intent, "Push"))


class NotesCheck(unittest.TestCase):
    def test_values_become_text(self):
        self.assertEqual(check_notes({"d": 1.5, "ok": True, "n": None, "pos": [1, 2]}),
                         {"d": "1.5", "ok": "True", "n": "None", "pos": "[1, 2]"})

    def test_none_means_no_notes(self):
        self.assertEqual(check_notes(None), {})

    def test_long_values_are_cut(self):
        notes = check_notes({"big": "x" * 5000})
        self.assertEqual(notes["big"], "x" * 2000 + "...[3000 more characters]")

    def test_subclasses_run_no_policy_code_and_become_plain_str(self):
        class Notes(dict):
            def items(self):
                raise AssertionError("policy code ran")

        class Text(str):
            def upper(self):
                raise AssertionError("policy code ran")

        notes = check_notes(Notes({Text("k"): Text("v")}))
        self.assertEqual(notes, {"k": "v"})
        self.assertEqual([type(x) for pair in notes.items() for x in pair], [str, str])

    def test_wrong_shapes_are_policy_errors(self):
        cases = [
            (["a"], "collect() must return a dict of str to str; actual: list"),
            ({1: "a"}, "collect() must return a dict of str to str; actual: key 1 of type int"),
            ({str(i): "" for i in range(65)},
             "collect() must return a dict of str to str; actual: 65 keys, exceeds limit of 64"),
        ]
        for result, message in cases:
            with self.subTest(message=message):
                with self.assertRaises(PolicyError) as caught:
                    check_notes(result)
                self.assertEqual(str(caught.exception), message)


class ExceptionText(unittest.TestCase):
    """What the runner shows of a policy's exception, after the policy's budget ended."""

    def test_plain_arguments_read_as_str_would(self):
        cases = [
            (ValueError("bad value"), "bad value"),
            (KeyError("x"), "'x'"),
            (ZeroDivisionError("division by zero"), "division by zero"),
            (RuntimeError("a", 1, [2.5, None]), "('a', 1, [2.5, None])"),
            (StopIteration(), ""),
        ]
        for error, text in cases:
            with self.subTest(error=repr(error)):
                self.assertEqual(sandbox.exception_text(error), text)

    def test_objects_whose_text_could_run_policy_code_show_only_their_type(self):
        class Endless(collections.Counter):
            def most_common(self, n=None):
                raise AssertionError("policy code ran")

        cases = [
            (ValueError(Endless("ab")), "<Endless object>"),
            (KeyError(Endless("ab")), "<Endless object>"),
            (RuntimeError("at", Endless("ab")), "('at', <Endless object>)"),
            (ValueError(["ok", Endless("ab")]), "<list object>"),
        ]
        for error, text in cases:
            with self.subTest(text=text):
                self.assertEqual(sandbox.exception_text(error), text)

    def test_long_text_is_cut(self):
        self.assertEqual(sandbox.exception_text(ValueError("m" * 50), limit=10),
                         "m" * 10 + "...[40 more characters]")
        self.assertEqual(sandbox.exception_text(ValueError(10 ** 5000)),
                         "<int too large to show>")


class CheckedAttributes(unittest.TestCase):
    """``obj.data`` is read through ``checked_attribute``: never a memoryview."""

    def test_array_data_is_refused_and_the_message_says_what_to_use(self):
        policy = load("import numpy as np\nitems = np.array([None, 'x'], dtype=object)\n"
                      "def get():\n    return items.data\n" + MINIMAL)
        with self.assertRaises(AttributeError) as caught:
            policy.namespace["get"]()
        self.assertEqual(str(caught.exception),
                         "'ndarray' attribute 'data' is raw memory (memoryview), not available "
                         "in policies; use tolist() or indexing")

    def test_a_policys_own_data_attribute_still_works(self):
        policy = load("class Box:\n    data = 1\nbox = Box()\nbox.data = [3]\n"
                      "box.data += [4]\nseen = box.data\n" + MINIMAL)
        self.assertEqual(policy.namespace["seen"], [3, 4])

    def test_class_patterns_cannot_read_data(self):
        error = validation_error("match x:\n    case object(data=raw):\n        pass\n")
        self.assertEqual(str(error), "line 2: attribute 'data' is not allowed in class "
                                     "patterns; read it with attribute syntax ('obj.data') "
                                     "(rule: denied-attribute)")


class HelpersObject(unittest.TestCase):
    def test_intent_builds_a_backend_action_intent(self):
        intent = Helpers(VXS).intent(0.8, 0.5, [VXS.MoveDir.Down])
        self.assertIsInstance(intent, VXS.ActionIntent)
        self.assertEqual(intent.get_move_sequence(), [VXS.MoveDir.Down])

    def test_plan_to_uses_the_backend_planner_in_reference_argument_order(self):
        calls = []

        class Planner:
            def __init__(self, padding):
                calls.append(("new", padding))

            def plan_action_py(self, *args):
                calls.append(("plan",) + args)
                return "intent"

        fake = types.SimpleNamespace(AStarActionPlanner=Planner)
        helpers = Helpers(fake)
        self.assertEqual(helpers.plan_to("w", [0, 0, 0], [1, 2, 3], 0.9, 0.1, padding=2), "intent")
        helpers.plan_to("w", [0, 0, 0], [1, 2, 3], 0.9, 0.1, padding=2)
        self.assertEqual(calls, [("new", 2), ("plan", "w", [0, 0, 0], [1, 2, 3], 0.9, 0.1),
                                 ("plan", "w", [0, 0, 0], [1, 2, 3], 0.9, 0.1)])

    def test_plan_to_on_the_embedded_backend_returns_an_intent(self):
        world = VXS.VoxelGrid()
        intent = Helpers(VXS).plan_to(world, [0, 0, 0], [2, 0, 0], 1.0, 0.0)
        self.assertIsInstance(intent, VXS.ActionIntent)


# ---------------------------------------------------------------------------------------------
# Reachability: what policy code can reach, breadth-first
# ---------------------------------------------------------------------------------------------

FORBIDDEN_MODULES = (os, sys, builtins, io, subprocess, socket, importlib)


def _forbidden_objects() -> dict[int, str]:
    table = {id(m): m.__name__ for m in FORBIDDEN_MODULES}
    named = {
        "os.system": os.system, "os.popen": os.popen, "os.kill": os.kill,
        "os.environ": os.environ, "builtins.__import__": builtins.__import__,
        "open": builtins.open, "eval": builtins.eval, "exec": builtins.exec,
        "compile": builtins.compile, "getattr": builtins.getattr, "setattr": builtins.setattr,
        "vars": builtins.vars, "globals": builtins.globals, "type": builtins.type,
        "io.open": io.open, "subprocess.Popen": subprocess.Popen,
        "socket.socket": socket.socket, "importlib.import_module": importlib.import_module,
        "sys.modules": sys.modules,
    }
    try:
        import numpy
        named.update({"numpy.ndarray": numpy.ndarray, "numpy.frombuffer": numpy.frombuffer,
                      "numpy.empty": numpy.empty, "numpy.load": numpy.load,
                      "numpy.save": numpy.save, "numpy.fromfile": numpy.fromfile,
                      "numpy.memmap": numpy.memmap})
    except ImportError:
        pass
    table.update({id(obj): name for name, obj in named.items()})
    return table


def _children(obj):
    """What policy code can reach from ``obj`` in one step: (object, path suffix)."""
    try:
        names = dir(obj)
    except Exception:
        names = []
    for name in names:
        if attribute_denial(name) is not None:
            continue  # the validator rejects this attribute name
        try:
            value = getattr(obj, name)
        except Exception:
            continue
        if name in sandbox.RUNTIME_CHECKED_ATTRIBUTES and sandbox.value_denial(value):
            continue  # checked_attribute refuses this value at run time
        yield value, "." + name
    if isinstance(obj, dict):
        for key, value in list(obj.items())[:1000]:
            yield key, "[key]"
            yield value, f"[{key!r}]"
    elif isinstance(obj, (list, tuple, set, frozenset, collections.deque)):
        for index, value in enumerate(list(obj)[:1000]):
            yield value, f"[{index}]"
    if isinstance(obj, type):  # match class patterns read __match_args__ attributes
        for name in getattr(obj, "__match_args__", ()) or ():
            if isinstance(name, str):
                try:
                    yield getattr(obj, name), f".<match {name}>"
                except Exception:
                    pass


def walk_reachable(roots: dict, *, max_depth: int = 8, max_objects: int = 200_000):
    """Breadth-first over ``_children``; returns (objects seen, list of (path, what))."""
    forbidden = _forbidden_objects()
    seen: dict[int, object] = {}  # keeps every object alive so ids stay unique
    problems = []
    queue = collections.deque((obj, path, 0) for path, obj in roots.items())
    while queue and len(seen) < max_objects:
        obj, path, depth = queue.popleft()
        if id(obj) in seen:
            continue
        seen[id(obj)] = obj
        if id(obj) in forbidden:
            problems.append((path, forbidden[id(obj)]))
            continue
        if isinstance(obj, types.ModuleType) and not isinstance(obj, sandbox.StandIn):
            problems.append((path, f"real module {obj.__name__}"))
            continue
        if isinstance(obj, (types.FrameType, types.CodeType, types.TracebackType, memoryview)):
            problems.append((path, type(obj).__name__))
            continue
        if depth < max_depth:
            queue.extend((child, path + suffix, depth + 1) for child, suffix in _children(obj))
    return len(seen), problems


def _sample_backend_objects() -> dict:
    """Objects a policy receives at run time, as far as the backend can build them."""
    samples = {}
    for label, make in [
        ("agent", lambda: VXS.Agent(0)), ("world", lambda: VXS.VoxelGrid()),
        ("fw", lambda: VXS.FilterWorld()), ("env", lambda: VXS.EnvState()),
        ("planner", lambda: VXS.AStarActionPlanner(0)),
        ("world.as_numpy()", lambda: VXS.VoxelGrid().as_numpy()),
        ("intent", lambda: VXS.ActionIntent(1.0, 0.0, [VXS.MoveDir.Up])),
        ("terrain_config", lambda: VXS.TerrainConfig.default_py()),
    ]:
        try:
            samples[label] = make()
        except Exception:
            continue
    return samples


class NothingDangerousIsReachable(unittest.TestCase):
    def roots(self) -> dict:
        policy = load(
            "import voxelsim, math, typing, random, numpy, collections, heapq, itertools\n"
            "import numpy.linalg\n" + MINIMAL)
        roots = {f"globals[{k!r}]": v for k, v in policy.namespace.items()
                 if not k.startswith("_")}
        table = policy.namespace["__builtins__"]
        roots.update({f"builtins.{k}": v for k, v in table.items() if not k.startswith("_")})
        roots["helpers"] = Helpers(VXS)
        roots.update(_sample_backend_objects())
        try:
            import numpy
            roots["an array"] = numpy.zeros(3)
        except ImportError:
            pass
        return roots

    def test_no_path_from_policy_globals_reaches_a_real_module_or_dangerous_function(self):
        count, problems = walk_reachable(self.roots())
        self.assertGreater(count, 1000)
        self.assertEqual(problems, [], "\n".join(f"{p} -> {w}" for p, w in problems[:20]))

    def test_the_walk_finds_a_planted_path(self):
        # Self-check: the walk must be able to fail.
        planted = types.SimpleNamespace(inner={"x": [types.SimpleNamespace(mod=os)]})
        count, problems = walk_reachable({"planted": planted, "fn": os.system})
        self.assertEqual(sorted(problems),
                         [("fn", "os.system"), ("planted.inner['x'][0].mod", "os")])

    def test_underscore_paths_are_not_followed_because_policies_cannot_write_them(self):
        # A backend method's __globals__ is its module: reachable only through '_' names.
        method = VXS.MoveDir.to_string
        self.assertIn("__globals__", dir(method))
        self.assertEqual(walk_reachable({"method": method})[1], [])


class AttributeDenialPredicate(unittest.TestCase):
    def test_table(self):
        cases = [("append", None), ("__class__", "underscore-name"), ("_x", "underscore-name"),
                 ("gi_frame", "frame-attribute"), ("f_back", "frame-attribute"),
                 ("co_code", "frame-attribute"), ("tb_next", "frame-attribute"),
                 ("format", "denied-attribute"), ("mro", "denied-attribute"),
                 ("tofile", "denied-attribute"), ("get_pos", None), ("frame", None)]
        for name, rule in cases:
            with self.subTest(name=name):
                denial = attribute_denial(name)
                self.assertEqual(None if denial is None else denial[0], rule)


ORDINARY = """
from dataclasses import dataclass, field
import functools, time, heapq
import numpy as np

@dataclass(order=True)
class Node:
    cost: float
    cell: tuple = field(compare=False)

class Base:
    def __init__(self, target):
        self.target = target
        self._cache = {}
        self._count = 0
    def __lt__(self, other):
        return self.target < other.target
    def bump(self):
        self._count += 1
        return self._count

class Planner(Base):
    def __init__(self, target):
        super().__init__(target)
        self.rng = np.random.default_rng()
    @property
    def goal(self):
        return self.target
    @staticmethod
    def norm(v):
        return float(np.linalg.norm(v))

def _helper(x):
    return "{:.2f} {}".format(x, "m")

@functools.lru_cache(maxsize=None)
def cached(n):
    return n * 2

class Timer:
    def __enter__(self):
        self.start = time.monotonic()
        return self
    def __exit__(self, *exc):
        return False

P = Planner([1, 2, 3])
P.bump()
h = []
heapq.heappush(h, Node(2.0, (1, 2)))
heapq.heappush(h, Node(1.0, (0, 0)))
assert heapq.heappop(h).cost == 1.0
assert isinstance(np.zeros(3), np.ndarray)
assert _helper(1.234) == "1.23 m"
with Timer() as t:
    pass
print(P.goal, P.norm([3, 4]), cached(4), P.rng.random() < 1.0, P.bump())


if __name__ == "__main__":
    print("never")
"""


class OrdinaryPython(unittest.TestCase):
    """What LLM-written policies use all the time loads and behaves as plain Python."""

    def test_classes_dataclasses_functools_time_with_property_super_and_private_names(self):
        policy = run_body(ORDINARY + MINIMAL)
        self.assertEqual(policy.output(), "[1, 2, 3] 5.0 8 True 2\n")
        self.assertIsInstance(policy.namespace["t"].start, float)

    def test_private_attributes_belong_to_the_policys_own_objects_only(self):
        cases = [
            "import numpy as np\nx = np.zeros(3)._x\n",
            "import random\nx = random.Random(1)._randbelow\n",
            "import collections\nx = collections.deque()._x\n",
        ]
        for source in cases:
            with self.subTest(source=source):
                error = load_error(MINIMAL + source)
                self.assertIn("attributes starting with '_' are only available on the "
                              "policy's own objects", str(error))

    def test_special_methods_that_run_outside_calls_stay_refused(self):
        for name in ("__del__", "__getattr__", "__getattribute__", "__setattr__", "__new__",
                     "__init_subclass__", "__set_name__", "__reduce__", "__class_getitem__"):
            with self.subTest(name=name):
                error = validation_error(f"class A:\n    def {name}(self, *args):\n        pass\n")
                self.assertEqual(error.rule, "underscore-name")


if __name__ == "__main__":
    unittest.main()
