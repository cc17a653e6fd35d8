"""Loading a policy from source text: the language layer of the policy sandbox.

No language-level filter is a security boundary on its own, so this module is one layer of
several. The others live in the worker (``bgen.runner.worker``): a fresh process per episode
with CPU, memory and file-size limits, an empty environment, and results that cross the
process boundary only as JSON.

    source text ──► validate_source ──► strip annotations ──► compile ──► exec module body
                     deny-by-default       (never run)                   safe builtins,
                     AST rules                                           stand-in modules
                                                                              │
                    LoadedPolicy ◄── contract check (act, collect, finalize) ◄┘

What each step stops:

* the validator (``validate_source``) rejects, before anything runs, every node type not on
  an allow-list, every identifier starting with ``_`` (so no ``__class__``/``__globals__``/
  ``__subclasses__`` walks), frame/code/generator/traceback attributes, ``format``/``mro`` and
  file-I/O attribute names, imports of modules we do not offer, bare ``except:``, and calls to
  builtins a policy does not get (``getattr``, ``eval``, ``open``...). Errors name the line and
  the rule (``RULES`` lists them all);
* the namespace gives the module body safe builtins (a capped ``print``, a ``hasattr`` that
  never reports private attributes, an ``__import__`` that maps allowed names to stand-ins)
  and stand-in modules that hold only public API objects, never real modules, so
  ``typing.sys`` or a backend module's own imports are unreachable.
* compiling rewrites reads of ``RUNTIME_CHECKED_ATTRIBUTES`` (``obj.data``) into calls of
  ``checked_attribute``, which refuses memoryviews (a numpy object array's ``data`` is a
  writable view of its object pointers);
* the result checks (``check_act_result``, ``check_notes``, ``exception_text``) never call a
  method a policy could have overridden, since the runner calls some of them after the
  policy's time budget ended.

Attribute access is the only way policy code reaches an object's attributes (``getattr``,
``vars`` and ``dir`` are not offered, ``str.format`` is blocked), so "reachable from a policy"
means reachable through non-underscore attribute names the validator accepts. Backend
methods are real Python functions whose ``__globals__`` is their module; the underscore rule
is what keeps that dictionary out of reach.

Contract (what a policy module defines)
---------------------------------------

``init(config) -> None`` (optional) is called once per episode, before the first ``act``.

    config (dict): episode settings; ``config["target"]`` is the goal cell ``(x, y, z)`` or
        ``None`` when the episode has no target.

``act(t, agent, world, fw, env, helpers)`` is called once per step and decides what to fly.

    t (float): simulated seconds since the episode started (step index times ``delta``).
    agent (voxelsim.Agent): the drone: ``get_pos()``, ``get_coord_py()``, ``get_action_py()``...
    world (voxelsim.VoxelGrid): the world the drone flies in (``collisions_py``...).
    fw (voxelsim.FilterWorld): what the drone's camera has observed so far.
    env (voxelsim.EnvState): the environment (wind...).
    helpers (Helpers): ``plan_to(world, origin, dst, urgency, yaw, padding=0)`` and
        ``intent(urgency, yaw, moves)``.

    Returns one of:
        ActionIntent: replaces the current action (same as ``(intent, "Replace")``);
        (ActionIntent, "Replace"): replaces the current action;
        (ActionIntent, "Push"): queues the intent behind the current action;
        None: keeps flying the current action (``(None, mode)`` means the same).
    ``check_act_result`` enforces this.

``collect(step_ctx) -> dict[str, str]`` is called after each step.

    step_ctx (dict): what happened in the step (position, coordinate, collisions, distance
        to the target...). Returns short notes for the step log; ``check_notes`` coerces
        scalar values to text and caps their size.

``finalize(ep_ctx) -> dict[str, str]`` is called once when the episode ends.

    ep_ctx (dict): the episode's outcome (success, steps, collisions...). Returns notes for
        the episode summary; ``"summary"`` is the one the critique reads first.

Policies may import ``voxelsim`` (the backend chosen by ``bgen.sim.load_backend``), ``math``,
``typing``, ``random`` (a seeded generator without global state), ``numpy`` (an allow-listed
subset without file I/O), ``collections``, ``heapq`` and ``itertools``; ``ALLOWED_MODULES``
names them and ``SAFE_BUILTIN_NAMES`` lists the builtins.
"""

from __future__ import annotations

import ast
import builtins
import collections
import dataclasses
import functools
import heapq
import inspect
import itertools
import math
import random as std_random
import string
import sys
import time
import types
import typing

from bgen.errors import PolicyError, PolicyLoadError

# ---------------------------------------------------------------------------------------------
# Limits and rule tables
# ---------------------------------------------------------------------------------------------

POLICY_FILENAME = "policy.py"
MAX_SOURCE_CHARS = 100_000
MAX_AST_DEPTH = 200
MAX_REPORTED_VIOLATIONS = 8
DEFAULT_PRINT_LIMIT = 64_000
MAX_NOTES = 64
MAX_NOTE_CHARS = 2_000

#: Every rule a PolicyLoadError can name, with what it stops. docs/sandbox.md lists the same.
RULES = {
    "source-type": "the source is not text",
    "source-size": "the source is larger than MAX_SOURCE_CHARS",
    "syntax": "the source does not parse or compile (includes null bytes)",
    "nesting": "expressions or blocks nested deeper than MAX_AST_DEPTH (parser bombs)",
    "node-type": "a syntax element outside the allow-list (with, async, await, except*...)",
    "underscore-name": "an identifier starting with '_' (dunder walks, private internals)",
    "frame-attribute": "frame, code, generator, coroutine or traceback attributes",
    "denied-attribute": "format/format_map/mro and file-I/O attribute names",
    "forbidden-name": "a builtin policies do not get (getattr, eval, open, type...)",
    "import": "a module outside ALLOWED_MODULES, a relative import or a missing name",
    "bare-except": "'except:' (it would also swallow the worker's time limit)",
    "class-keywords": "class keywords such as metaclass=",
    "uninitialised-memory": "a call with where= but no out= (numpy ufuncs leave the rest "
                            "uninitialised)",
    "load-exception": "the module body raised while loading",
    "contract": "act/collect/finalize (or init) missing, not callable or with wrong arity",
}

_NODE_TYPE_NAMES = (
    # modules and statements
    "Module", "FunctionDef", "ClassDef", "Return", "Delete", "Assign", "AugAssign",
    "AnnAssign", "For", "While", "If", "Raise", "Try", "Assert", "Import", "ImportFrom",
    "Global", "Nonlocal", "Expr", "Pass", "Break", "Continue", "Match", "With", "withitem",
    # expressions
    "BoolOp", "NamedExpr", "BinOp", "UnaryOp", "Lambda", "IfExp", "Dict", "Set", "ListComp",
    "SetComp", "DictComp", "GeneratorExp", "Yield", "YieldFrom", "Compare", "Call",
    "FormattedValue", "JoinedStr", "Constant", "Attribute", "Subscript", "Starred", "Name",
    "List", "Tuple", "Slice",
    # contexts and operators
    "Load", "Store", "Del", "And", "Or", "Add", "Sub", "Mult", "MatMult", "Div", "Mod", "Pow",
    "LShift", "RShift", "BitOr", "BitXor", "BitAnd", "FloorDiv", "Invert", "Not", "UAdd",
    "USub", "Eq", "NotEq", "Lt", "LtE", "Gt", "GtE", "Is", "IsNot", "In", "NotIn",
    # helpers and match patterns
    "comprehension", "ExceptHandler", "arguments", "arg", "keyword", "alias", "match_case",
    "MatchValue", "MatchSingleton", "MatchSequence", "MatchMapping", "MatchClass",
    "MatchStar", "MatchAs", "MatchOr",
)
ALLOWED_NODE_TYPES = frozenset(
    getattr(ast, name) for name in _NODE_TYPE_NAMES if hasattr(ast, name))

_NODE_TYPE_LABELS = {
    "With": "'with' statements", "AsyncWith": "'async with' statements",
    "AsyncFunctionDef": "async functions", "AsyncFor": "'async for' loops",
    "Await": "'await' expressions", "TryStar": "'except*' handlers",
    "TypeAlias": "'type' statements", "TypeVar": "type parameters",
    "ParamSpec": "type parameters", "TypeVarTuple": "type parameters",
}

#: Attribute prefixes of frames, code objects, generators, coroutines, async generators and
#: tracebacks: each leads from a live object back to globals and builtins.
FRAME_ATTRIBUTE_PREFIXES = ("gi_", "cr_", "ag_", "f_", "tb_", "co_")

#: Attribute names denied whatever the object, with the reason given to the policy author.
DENIED_ATTRIBUTES = {
    "format": "str.format reaches attributes through its replacement fields; use an f-string",
    "format_map": "str.format_map reaches attributes through its replacement fields; "
                  "use an f-string",
    "mro": "class introspection is not available",
    # numpy arrays reach policies from the backend (VoxelGrid.as_numpy...), so their file
    # and raw-memory methods are denied by name, as are numpy's own I/O entry points.
    "tofile": "file I/O is not available", "dump": "file I/O and pickling are not available",
    "dumps": "pickling is not available", "load": "file I/O is not available",
    "loads": "unpickling is not available", "save": "file I/O is not available",
    "savez": "file I/O is not available", "savez_compressed": "file I/O is not available",
    "savetxt": "file I/O is not available", "loadtxt": "file I/O is not available",
    "genfromtxt": "file I/O is not available", "fromfile": "file I/O is not available",
    "fromregex": "file I/O is not available", "memmap": "file I/O is not available",
    "open": "file I/O is not available", "lib": "numpy internals are not available",
    "ctypes": "raw memory access is not available", "cffi": "raw memory access is not available",
    "ctypeslib": "raw memory access is not available",
}

#: Builtins a policy does not get; naming one (without binding it first) is rejected up
#: front with a hint instead of failing later with a bare NameError.
FORBIDDEN_NAMES = {
    "getattr": "use attribute access", "setattr": "assign the attribute directly",
    "delattr": "use del", "vars": None, "dir": None, "globals": "use module-level names",
    "locals": None, "eval": None, "exec": None, "compile": None, "open": "no file I/O",
    "input": None, "breakpoint": None, "help": None, "type": "use isinstance()",
    "memoryview": None, "exit": None, "quit": None,
    "BaseException": "catch Exception (or voxelsim.PanicException)",
    "SystemExit": None, "KeyboardInterrupt": None, "GeneratorExit": None,
}

#: Attribute names that stay usable (a policy's own ``self.data``) but are read through
#: ``checked_attribute`` at run time: on a numpy array ``data`` is a *writable* memoryview,
#: and on an object array its bytes are PyObject pointers a policy could forge.
RUNTIME_CHECKED_ATTRIBUTES = frozenset({"data", "resize", "view"})
#: The builtins name compiled code calls for them (policy source cannot spell it).
CHECKED_ATTRIBUTE_NAME = "__policy_attribute__"
#: The builtins name guarding ``obj._name`` (policy source cannot spell it).
POLICY_OWNER_NAME = "__policy_owner__"
#: ``__name__`` of a policy module, and so ``__module__`` of every class it defines.
POLICY_MODULE_NAME = "policy"

_IDENTIFIER_KINDS = {
    ast.Name: "names", ast.Attribute: "attribute names", ast.FunctionDef: "function names",
    ast.ClassDef: "class names", ast.arg: "argument names", ast.keyword: "keyword argument names",
    ast.Global: "names", ast.Nonlocal: "names", ast.ExceptHandler: "names",
}

# ---------------------------------------------------------------------------------------------
# Validator: source text -> checked, annotation-free tree (pure, nothing executes)
# ---------------------------------------------------------------------------------------------


def attribute_denial(name: str) -> tuple[str, str] | None:
    """``(rule, reason)`` when policy code may not use attribute ``name``, else None.

    The validator, the ``hasattr`` builtin and the reachability test share this predicate,
    so "what a policy can reach" means the same thing everywhere.
    """
    if name.startswith("_"):
        return "underscore-name", "attribute names starting with '_' are not allowed"
    if name.startswith(FRAME_ATTRIBUTE_PREFIXES):
        return "frame-attribute", ("frame, code, generator and traceback attributes "
                                   "are not allowed")
    if name in DENIED_ATTRIBUTES:
        return "denied-attribute", f"attribute '{name}' is not allowed: {DENIED_ATTRIBUTES[name]}"
    return None


def _where(lineno: int | None) -> str:
    return f"line {lineno}: " if lineno else ""


def _violation(lineno: int | None, text: str, rule: str) -> tuple[int, str, str]:
    return (lineno or 0, f"{_where(lineno)}{text} (rule: {rule})", rule)


def _underscore(lineno, kind: str, name: str):
    return _violation(lineno, f"{kind} starting with '_' are not allowed: {name!r}",
                      "underscore-name")


def _is_future_annotations(node) -> bool:
    return (isinstance(node, ast.ImportFrom) and node.module == "__future__" and node.level == 0
            and [(a.name, a.asname) for a in node.names] == [("annotations", None)])


def _strip_annotations(tree: ast.Module) -> None:
    """Remove annotations (and ``from __future__ import annotations``) in place, iteratively.

    Annotations never run, so a policy's ``def f(x: "anything")`` costs nothing and nothing
    like ``typing.get_type_hints`` can evaluate them later.
    """
    tree.body = [stmt for stmt in tree.body if not _is_future_annotations(stmt)]
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            node.annotation = None
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.returns = None
        if isinstance(node, ast.ClassDef):
            # Class fields keep an inert annotation (``cost: float`` → ``cost: None``), so
            # dataclasses see the fields; nothing of the original is ever evaluated. A
            # ``ClassVar`` stays a plain class attribute.
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and \
                        "ClassVar" not in ast.unparse(stmt.annotation):
                    stmt.annotation = ast.copy_location(ast.Constant(value=None),
                                                        stmt.annotation)
            node.body = [_without_annotation(stmt) if isinstance(stmt, ast.AnnAssign) and
                         isinstance(stmt.annotation, ast.expr) and not (
                             isinstance(stmt.annotation, ast.Constant) and
                             stmt.annotation.value is None) else stmt for stmt in node.body]
            continue
        for field in ("body", "orelse", "finalbody"):
            stmts = getattr(node, field, None)
            if isinstance(stmts, list) and any(isinstance(s, ast.AnnAssign) for s in stmts):
                setattr(node, field, [_without_annotation(s) for s in stmts])


def _without_annotation(stmt):
    if not isinstance(stmt, ast.AnnAssign):
        return stmt
    if stmt.value is None:
        replacement = ast.Pass()
    else:
        replacement = ast.Assign(targets=[stmt.target], value=stmt.value, type_comment=None)
    return ast.copy_location(replacement, stmt)


def _bound_names(tree: ast.Module) -> set[str]:
    """Names the policy binds anywhere (so ``dir = ...; dir(...)`` is the policy's own)."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add(node.asname or node.name.split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    return bound


#: Special methods a policy's classes may define: construction, comparison (heapq nodes,
#: sorting), containers, arithmetic, context managers. The runner never calls them outside a
#: budget (it converts what crosses into its code to exact builtin types first). Finalisers
#: (``__del__``), attribute hooks, ``__new__``, class hooks and pickling stay refused.
ALLOWED_DUNDER_METHODS = frozenset({
    "__init__", "__post_init__", "__repr__", "__str__", "__eq__", "__ne__", "__lt__",
    "__le__", "__gt__", "__ge__", "__hash__", "__bool__", "__len__", "__iter__", "__next__",
    "__contains__", "__getitem__", "__setitem__", "__delitem__", "__call__", "__enter__",
    "__exit__", "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
    "__truediv__", "__rtruediv__", "__floordiv__", "__mod__", "__neg__", "__pos__", "__abs__",
    "__matmul__", "__iadd__", "__isub__", "__imul__",
})
#: Names starting with '_' a policy may read: the module's own name (``if __name__ ==
#: "__main__":`` guards are simply false in a policy).
ALLOWED_DUNDER_NAMES = frozenset({"__name__"})


def _private_name(name: str) -> bool:
    """``_helper`` style names (one leading underscore) are the policy's own business."""
    return name.startswith("_") and not name.startswith("__")


def _underscore_refused(name: str) -> bool:
    return name.startswith("_") and name != "_" and not _private_name(name)


def _simple_format_literal(node) -> bool:
    """``"{:.2f} {name}".format(...)``: a string literal whose replacement fields only name
    positions or keywords (no ``.attr`` or ``[index]`` walks, also in nested specs)."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return False
    pending = [node.value]
    try:
        while pending:
            for _literal, field, spec, _conversion in string.Formatter().parse(pending.pop()):
                if field is not None and ("." in field or "[" in field):
                    return False
                if spec:
                    pending.append(spec)
    except ValueError:
        return False
    return True


def _check_identifier(node, lineno, bound: set[str]):
    """Violations of the identifier rules by one node (iterable of tuples)."""
    kind = _IDENTIFIER_KINDS.get(type(node))
    if isinstance(node, ast.Name):
        if node.id in ALLOWED_DUNDER_NAMES and isinstance(node.ctx, ast.Load):
            return
        if _underscore_refused(node.id):
            yield _underscore(lineno, kind, node.id)
        elif isinstance(node.ctx, ast.Load) and node.id in FORBIDDEN_NAMES and node.id not in bound:
            hint = FORBIDDEN_NAMES[node.id]
            yield _violation(lineno, f"{node.id!r} is not available in policies"
                             + (f"; {hint}" if hint else ""), "forbidden-name")
    elif isinstance(node, ast.Attribute):
        if node.attr == "__init__" and isinstance(node.value, ast.Call) and isinstance(
                node.value.func, ast.Name) and node.value.func.id == "super":
            return                      # super().__init__(...)
        if node.attr == "format" and _simple_format_literal(node.value):
            return                      # "{:.2f}".format(x) on a literal without walks
        if _private_name(node.attr):
            return                      # self._cache: checked at run time (policy_owner)
        denial = attribute_denial(node.attr)
        if denial is not None:
            rule, reason = denial
            yield _violation(lineno, f"{reason}: {node.attr!r}" if rule != "denied-attribute"
                             else reason, rule)
    elif isinstance(node, ast.arg):
        if _underscore_refused(node.arg):
            yield _underscore(lineno, kind, node.arg)
    elif isinstance(node, ast.FunctionDef):
        if _underscore_refused(node.name) and node.name not in ALLOWED_DUNDER_METHODS:
            yield _underscore(lineno, kind, node.name)
    elif isinstance(node, ast.ClassDef):
        if _underscore_refused(node.name):
            yield _underscore(lineno, kind, node.name)
    elif isinstance(node, ast.keyword):
        if node.arg is not None and _underscore_refused(node.arg):
            yield _underscore(lineno, kind, node.arg)
    elif isinstance(node, (ast.Global, ast.Nonlocal)):
        for name in node.names:
            if _underscore_refused(name):
                yield _underscore(lineno, kind, name)
    elif isinstance(node, ast.ExceptHandler):
        if node.name is not None and _underscore_refused(node.name):
            yield _underscore(lineno, kind, node.name)
    elif isinstance(node, (ast.MatchAs, ast.MatchStar)):
        if node.name is not None and _underscore_refused(node.name):
            yield _underscore(lineno, "names", node.name)
    elif isinstance(node, ast.MatchMapping):
        if node.rest is not None and _underscore_refused(node.rest):
            yield _underscore(lineno, "names", node.rest)
    elif isinstance(node, ast.MatchClass):
        for attr in node.kwd_attrs:
            denial = attribute_denial(attr)
            if denial is not None and denial[0] == "underscore-name":
                yield _underscore(lineno, "match class-pattern keywords", attr)
            elif denial is not None:
                yield _violation(lineno, f"{denial[1]}: {attr!r}"
                                 if denial[0] != "denied-attribute" else denial[1], denial[0])
            elif attr in RUNTIME_CHECKED_ATTRIBUTES:
                yield _violation(lineno, f"attribute '{attr}' is not allowed in class patterns; "
                                 f"read it with attribute syntax ('obj.{attr}')",
                                 "denied-attribute")


def _check_import(node, lineno):
    """Violations of the import rules by an Import/ImportFrom node."""
    if isinstance(node, ast.ImportFrom):
        if node.level:
            yield _violation(lineno, "relative imports are not allowed", "import")
            return
        modules = [node.module or ""]
    else:
        modules = [alias.name for alias in node.names]
    for module in modules:
        if any(part.startswith("_") for part in module.split(".")):
            yield _underscore(lineno, "module names", module)
        elif module not in ALLOWED_MODULES:
            yield _violation(lineno, _import_refusal(module), "import")
    for alias in node.names:
        for name in (alias.name if isinstance(node, ast.ImportFrom) else None, alias.asname):
            if name is not None and name.startswith("_"):
                yield _underscore(lineno, "imported names", name)


def _iter_violations(tree: ast.Module):
    """Walk the tree iteratively (deep input must not overflow our own stack)."""
    bound = _bound_names(tree)
    stack = [(tree, 0, None)]
    while stack:
        node, depth, inherited_line = stack.pop()
        lineno = getattr(node, "lineno", None) or inherited_line
        if depth > MAX_AST_DEPTH:
            yield _violation(lineno, f"code is nested more than {MAX_AST_DEPTH} levels deep",
                             "nesting")
            return
        if type(node) not in ALLOWED_NODE_TYPES:
            name = type(node).__name__
            label = _NODE_TYPE_LABELS.get(name, f"{name} nodes")
            yield _violation(lineno, f"{label} are not allowed", "node-type")
            continue
        yield from _check_identifier(node, lineno, bound)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield from _check_import(node, lineno)
        elif isinstance(node, ast.ExceptHandler) and node.type is None:
            yield _violation(lineno, "bare 'except:' is not allowed; catch Exception "
                             "(or voxelsim.PanicException) instead", "bare-except")
        elif isinstance(node, ast.ClassDef) and node.keywords:
            yield _violation(lineno, "class keywords (metaclass=...) are not allowed",
                             "class-keywords")
        elif isinstance(node, ast.Call) and any(k.arg == "where" for k in node.keywords) and \
                not any(k.arg == "out" and not _is_none(k.value) for k in node.keywords):
            # By name alone a call cannot be trusted to be a reduction (``x.sum = a.clip``).
            # numpy ufuncs leave the masked-out elements of a fresh result uninitialised:
            # heap memory of this process (numpy.where(cond, a, b) is the function, not this).
            yield _violation(lineno, UNINITIALISED_TEXT, "uninitialised-memory")
        children = list(ast.iter_child_nodes(node))
        stack.extend((child, depth + 1, lineno) for child in reversed(children))


def _is_none(node: ast.AST) -> bool:
    """``None`` written as it is (``out=None`` gives no output array)."""
    return isinstance(node, ast.Constant) and node.value is None


def _parse(source) -> ast.Module:
    if not isinstance(source, str):
        raise PolicyLoadError(
            f"policy source must be text (str); actual: {type(source).__name__} "
            "(rule: source-type)", rule="source-type")
    if len(source) > MAX_SOURCE_CHARS:
        raise PolicyLoadError(
            f"policy source is {len(source)} characters, exceeds limit of {MAX_SOURCE_CHARS} "
            "(rule: source-size)", rule="source-size")
    try:
        return ast.parse(source, filename=POLICY_FILENAME)
    except SyntaxError as error:
        raise _syntax_error(error) from None
    except (RecursionError, MemoryError):
        raise PolicyLoadError(
            "policy source is nested too deeply to parse (rule: nesting)", rule="nesting") from None
    except ValueError as error:  # null bytes, on the versions that say ValueError
        raise PolicyLoadError(f"policy source is not valid Python: {error} (rule: syntax)",
                              rule="syntax") from None


def _syntax_error(error: SyntaxError) -> PolicyLoadError:
    message = error.msg or "invalid syntax"
    if "nested" in message or "too complex" in message or "too many" in message:
        rule = "nesting"
    else:
        rule = "syntax"
    where = _where(error.lineno) or "policy source is not valid Python: "
    return PolicyLoadError(f"{where}{message} (rule: {rule})",
                           lineno=error.lineno, rule=rule)


def checked_tree(source) -> ast.Module:
    """Parse, strip annotations and apply every AST rule; the tree is ready to compile."""
    tree = _parse(source)
    try:
        _strip_annotations(tree)
        violations = sorted(_iter_violations(tree), key=lambda v: v[0])
    except (RecursionError, MemoryError):
        raise PolicyLoadError("policy source is nested too deeply to check (rule: nesting)",
                              rule="nesting") from None
    if violations:
        lineno, message, rule = violations[0]
        more = [text for _, text, _ in violations[1:MAX_REPORTED_VIOLATIONS]]
        if more:
            message += "\nalso: " + "\nalso: ".join(more)
        raise PolicyLoadError(message, lineno=lineno or None, rule=rule)
    return tree


def validate_source(source: str) -> None:
    """Apply the AST rules only (nothing executes); raise PolicyLoadError naming line and rule."""
    checked_tree(source)


class _CheckedAttributeReads(ast.NodeTransformer):
    """``obj.data`` (a read) becomes ``__policy_attribute__(obj, "data")``; stores stay as they are.

    ``obj._name`` (read, store or delete) becomes ``__policy_owner__(obj)._name``: allowed
    only when ``obj`` is an instance of a class the policy defined, or such a class.
    """

    def visit_Attribute(self, node):
        self.generic_visit(node)
        if _private_name(node.attr):
            owner = ast.Call(func=ast.Name(id=POLICY_OWNER_NAME, ctx=ast.Load()),
                             args=[node.value], keywords=[])
            node.value = ast.copy_location(owner, node.value)
            return node
        if node.attr not in RUNTIME_CHECKED_ATTRIBUTES or not isinstance(node.ctx, ast.Load):
            return node
        call = ast.Call(func=ast.Name(id=CHECKED_ATTRIBUTE_NAME, ctx=ast.Load()),
                        args=[node.value, ast.Constant(value=node.attr)], keywords=[])
        return ast.copy_location(call, node)


def compile_policy(source: str) -> types.CodeType:
    """Validate and compile; compile-time errors ('return' outside function...) become rules.

    ``optimize=0`` whatever the interpreter's ``-O``: a policy's ``assert`` always runs."""
    tree = ast.fix_missing_locations(_CheckedAttributeReads().visit(checked_tree(source)))
    try:
        return compile(tree, POLICY_FILENAME, "exec", dont_inherit=True, optimize=0)
    except SyntaxError as error:
        raise _syntax_error(error) from None
    except (RecursionError, MemoryError):
        raise PolicyLoadError("policy source is nested too deeply to compile (rule: nesting)",
                              rule="nesting") from None
    except ValueError as error:
        raise PolicyLoadError(f"policy source is not valid Python: {error} (rule: syntax)",
                              rule="syntax") from None


# ---------------------------------------------------------------------------------------------
# Stand-in modules: public API objects only, never a real module
# ---------------------------------------------------------------------------------------------


class StandIn(types.ModuleType):
    """A read-only module object holding only the names a policy may use.

    Its ``__name__`` is ``"sandbox:<name>"`` on purpose: when ``from m import x`` misses,
    CPython looks ``"<m.__name__>.x"`` up in ``sys.modules``; with the real name that would
    hand out real submodules (``from numpy import lib``). No real module has this prefix.
    """

    def __init__(self, name: str, members: dict, hints: dict | None = None):
        super().__init__("sandbox:" + name)
        self.__dict__.update(members)
        self.__dict__["__all__"] = sorted(members)
        self.__dict__["__sandbox_name__"] = name
        self.__dict__["__sandbox_hints__"] = dict(hints or {})

    def __getattr__(self, name):
        display = self.__dict__["__sandbox_name__"]
        hint = self.__dict__["__sandbox_hints__"].get(name)
        raise AttributeError(f"module '{display}' has no attribute '{name}' in the policy sandbox"
                             + (f"; {hint}" if hint else ""))

    def __setattr__(self, name, value):
        raise AttributeError(f"module '{self.__dict__['__sandbox_name__']}' is read-only "
                             "in the policy sandbox")

    def __delattr__(self, name):
        self.__setattr__(name, None)

    def __repr__(self):
        return f"<module '{self.__dict__['__sandbox_name__']}' (policy sandbox)>"


def _pick(module, names) -> dict:
    return {name: getattr(module, name) for name in names if hasattr(module, name)}


MATH_NAMES = tuple(name for name in dir(math) if not name.startswith("_"))
TYPING_NAMES = ("Any", "Callable", "Dict", "FrozenSet", "Iterable", "Iterator", "List",
                "Literal", "Mapping", "Optional", "Sequence", "Set", "Tuple", "Union",
                "TYPE_CHECKING", "cast")
COLLECTIONS_NAMES = ("deque", "defaultdict", "OrderedDict", "Counter")
def _default_wraps(wrapped):
    """``functools.wraps(wrapped)`` with its default attributes only. Its ``assigned`` and
    ``updated`` arguments name attributes as strings, which the validator cannot see:
    ``updated=("__globals__",)`` would copy a stand-in function's module globals (the real
    ``sys`` and builtins) into the policy's own."""
    return functools.wraps(wrapped)


DATACLASSES_NAMES = ("dataclass", "field", "fields", "asdict", "astuple", "replace",
                     "is_dataclass", "FrozenInstanceError")
FUNCTOOLS_NAMES = ("partial", "reduce", "lru_cache", "cache", "cached_property", "cmp_to_key",
                   "total_ordering", "wraps")
#: Clocks only: no sleep (a policy has nothing to wait for), no process or thread clocks.
TIME_NAMES = ("monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "time",
              "time_ns")
HEAPQ_NAMES = ("heappush", "heappop", "heapify", "heapreplace", "heappushpop", "nlargest",
               "nsmallest")
ITERTOOLS_NAMES = ("accumulate", "chain", "combinations", "count", "cycle", "islice",
                   "pairwise", "permutations", "product", "repeat", "starmap", "zip_longest")
# No ndarray (its constructor takes raw buffers), no empty (uninitialised memory), nothing
# that reads or writes files, no random (use the seeded `random`), no lib/ctypeslib.
NUMPY_NAMES = (
    "array", "asarray", "zeros", "ones", "full", "arange", "linspace", "zeros_like",
    "ones_like", "full_like", "eye", "identity", "stack", "vstack", "hstack", "column_stack",
    "concatenate", "where", "clip", "abs", "absolute", "sqrt", "square", "exp", "log", "log2",
    "log10", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "hypot",
    "degrees", "radians", "deg2rad", "rad2deg", "floor", "ceil", "round", "rint", "sign",
    "minimum", "maximum", "min", "max", "amin", "amax", "sum", "mean", "median", "std", "var",
    "prod", "cumsum", "cumprod", "argmin", "argmax", "argsort", "sort", "unique", "dot",
    "cross", "outer", "inner", "matmul", "allclose", "isclose", "isnan", "isfinite", "isinf",
    "nan", "inf", "pi", "e", "float64", "float32", "int32", "int64", "int8", "uint8", "bool_",
    "newaxis", "count_nonzero", "nonzero", "any", "all", "reshape", "transpose", "diff",
    "interp", "percentile", "mod", "floor_divide", "fmod", "array_equal", "tile", "repeat",
    "flip", "roll", "meshgrid", "indices", "logical_and", "logical_or", "logical_not",
    "ravel", "squeeze", "expand_dims", "nanmin", "nanmax", "nanmean", "argwhere", "flatnonzero",
    "unravel_index", "ravel_multi_index", "searchsorted", "bincount", "isin", "nanargmin",
    "nanargmax", "trunc", "power", "atleast_1d", "atleast_2d", "add", "subtract", "multiply",
    "divide", "true_divide", "negative",
)
NUMPY_LINALG_NAMES = ("norm", "inv", "det", "solve", "pinv", "eig", "eigh", "svd", "lstsq",
                      "matrix_rank", "LinAlgError")
NUMPY_HINTS = {"empty": "use numpy.zeros()"}
#: numpy types offered for isinstance() only (calling them is refused: ``numpy.ndarray(...)``
#: builds arrays on raw buffers).
NUMPY_CHECK_ONLY_TYPES = ("ndarray", "generic", "number", "integer", "signedinteger",
                          "unsignedinteger", "floating", "complexfloating")
#: Backend names a policy does not get: network clients (policies never send frames).
EXCLUDED_BACKEND_NAMES = frozenset({"RendererClient", "AsyncRendererClient"})


class SeededRandom:
    """``random`` for policies: a ``random.Random`` seeded per episode, no global state.

    Only the listed methods are public; the generator itself sits in an underscore slot.
    ``Random(seed)`` makes an independent generator.
    """

    __slots__ = ("_rng",)

    def __init__(self, seed=0):
        self._rng = std_random.Random(0 if seed is None else seed)

    def seed(self, value=0):
        self._rng.seed(0 if value is None else value)

    def random(self):
        return self._rng.random()

    def uniform(self, a, b):
        return self._rng.uniform(a, b)

    def randint(self, a, b):
        return self._rng.randint(a, b)

    def randrange(self, start, stop=None, step=1):
        return self._rng.randrange(start, stop, step)

    def choice(self, seq):
        return self._rng.choice(seq)

    def choices(self, population, weights=None, *, cum_weights=None, k=1):
        return self._rng.choices(population, weights, cum_weights=cum_weights, k=k)

    def shuffle(self, items):
        self._rng.shuffle(items)

    def sample(self, population, k):
        return self._rng.sample(population, k)

    def gauss(self, mu=0.0, sigma=1.0):
        return self._rng.gauss(mu, sigma)

    def normalvariate(self, mu=0.0, sigma=1.0):
        return self._rng.normalvariate(mu, sigma)

    def triangular(self, low=0.0, high=1.0, mode=None):
        return self._rng.triangular(low, high, mode)


_RANDOM_METHODS = ("seed", "random", "uniform", "randint", "randrange", "choice", "choices",
                   "shuffle", "sample", "gauss", "normalvariate", "triangular")


def _is_backend_submodule(value, prefix: str) -> bool:
    """A submodule of the backend (``voxelsim.px4``), not a module it merely imports.

    PyO3 submodules often carry a bare name (``"px4"``) and are missing from sys.modules;
    every module a Python backend imports (numpy, operator...) is registered there.
    """
    name = getattr(value, "__name__", "")
    return name.startswith(prefix + ".") or sys.modules.get(name) is not value


def _backend_members(module, prefix: str, depth: int = 0) -> dict:
    """Public, non-module names of a backend module; its own submodules become stand-ins."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [name for name in dir(module) if not name.startswith("_")]
    members = {}
    for name in names:
        if name.startswith("_") or name in EXCLUDED_BACKEND_NAMES or not hasattr(module, name):
            continue
        value = getattr(module, name)
        if isinstance(value, types.ModuleType):
            if depth < 2 and _is_backend_submodule(value, prefix):
                members[name] = StandIn(f"voxelsim.{name}",
                                        _backend_members(value, prefix, depth + 1))
            continue
        members[name] = value
    return members


class TypeCheck:
    """A class offered for ``isinstance``/``issubclass`` only; calling it is refused."""

    __slots__ = ("_cls", "_name", "_hint")

    def __init__(self, cls, name: str, hint: str):
        self._cls, self._name, self._hint = cls, name, hint

    def __instancecheck__(self, value) -> bool:
        return isinstance(value, self._cls)

    def __subclasscheck__(self, cls) -> bool:
        return isinstance(cls, type) and issubclass(cls, self._cls)

    def __call__(self, *args, **kwargs):
        raise TypeError(f"{self._name}() cannot be called in policies; {self._hint}")

    def __repr__(self):
        return f"<class '{self._name}'>"


#: Reductions whose ``where=`` leaves out elements instead of leaving output unwritten (the
#: result starts from the identity or ``initial``): the stand-in's own functions of these
#: names take it without ``out=`` (the validator still refuses it written out: by name alone
#: it cannot tell them from an alias).
WHERE_SAFE_REDUCTIONS = frozenset({"sum", "mean", "prod", "std", "var", "min", "max", "amin",
                                   "amax", "any", "all", "nanmin", "nanmax", "nanmean",
                                   "count_nonzero"})
UFUNC_METHODS = frozenset({"outer", "reduce", "accumulate", "reduceat", "at"})
#: The refusal of ``where=`` without ``out=`` (validator rule ``uninitialised-memory``).
UNINITIALISED_TEXT = ("'where=' without 'out=' returns uninitialised memory; use "
                      "numpy.where(condition, a, b)")


def _no_output(out) -> bool:
    return out is None or (isinstance(out, tuple) and all(item is None for item in out))


class _NoUninitialised:
    """A numpy function or ufunc of the stand-in that refuses ``where=`` without an ``out=``
    array also when the keywords come from a ``**`` dict the validator cannot read; its other
    attributes (``reduce``, ``nin``) are the function's."""

    __slots__ = ("_function",)

    def __init__(self, function):
        object.__setattr__(self, "_function", function)

    def __call__(self, *args, **kwargs):
        if "where" in kwargs and _no_output(kwargs.get("out")) and \
                getattr(self._function, "__name__", None) not in WHERE_SAFE_REDUCTIONS:
            raise TypeError(UNINITIALISED_TEXT)
        return self._function(*args, **kwargs)

    def __getattr__(self, name):
        value = getattr(self._function, name)
        # A ufunc's methods take where= too (``np.maximum.outer(a, b, where=m)``).
        return _NoUninitialised(value) if name in UFUNC_METHODS else value

    def __setattr__(self, name, value):
        raise AttributeError("numpy functions are read-only in the policy sandbox")

    def __repr__(self):
        return repr(self._function)


def _guarded(members: dict) -> dict:
    """Every function and ufunc of ``members`` behind ``_NoUninitialised`` (types and
    constants as they are)."""
    return {name: _NoUninitialised(value) if callable(value) and not isinstance(value, type)
            else value for name, value in members.items()}


def _numpy_standin(seed: int = 0):
    import numpy

    def default_rng(seed_value=None):
        """numpy.random.default_rng, seeded from the episode's seed when no seed is given."""
        return numpy.random.default_rng(seed if seed_value is None else seed_value)

    linalg = StandIn("numpy.linalg", _pick(numpy.linalg, NUMPY_LINALG_NAMES))
    random = StandIn("numpy.random", {"default_rng": default_rng})
    checks = {name: TypeCheck(getattr(numpy, name), f"numpy.{name}",
                              "create arrays with numpy.array()")
              for name in NUMPY_CHECK_ONLY_TYPES}
    members = {**_guarded(_pick(numpy, NUMPY_NAMES)), **checks, "linalg": linalg,
               "random": random}
    return StandIn("numpy", members, NUMPY_HINTS), linalg, random


def build_standins(vxs_module, *, seed: int = 0, ledger: "IntentLedger | None" = None) -> dict:
    """Fresh stand-ins for one policy, keyed by the import name that reaches them.

    With a ``ledger``, ``voxelsim.ActionIntent`` and ``voxelsim.AStarActionPlanner`` are
    recording stand-ins (``IntentConstructor``, ``PlannerConstructor``), so every intent the
    policy builds can be described to the trusted replay.
    """
    rng = SeededRandom(seed)
    random_members = {name: getattr(rng, name) for name in _RANDOM_METHODS}
    random_members["Random"] = SeededRandom
    backend = _backend_members(vxs_module, getattr(vxs_module, "__name__", "voxelsim"))
    if ledger is not None:
        if "ActionIntent" in backend:
            backend["ActionIntent"] = IntentConstructor(backend["ActionIntent"], ledger)
        if "AStarActionPlanner" in backend:
            backend["AStarActionPlanner"] = PlannerConstructor(backend["AStarActionPlanner"],
                                                               ledger)
    standins = {
        "voxelsim": StandIn("voxelsim", backend),
        "math": StandIn("math", _pick(math, MATH_NAMES)),
        "typing": StandIn("typing", _pick(typing, TYPING_NAMES)),
        "random": StandIn("random", random_members),
        "collections": StandIn("collections", _pick(collections, COLLECTIONS_NAMES)),
        "heapq": StandIn("heapq", _pick(heapq, HEAPQ_NAMES)),
        "itertools": StandIn("itertools", _pick(itertools, ITERTOOLS_NAMES)),
        "dataclasses": StandIn("dataclasses", _pick(dataclasses, DATACLASSES_NAMES)),
        "functools": StandIn("functools", {**_pick(functools, FUNCTOOLS_NAMES),
                                           "wraps": _default_wraps}),
        "time": StandIn("time", _pick(time, TIME_NAMES)),
    }
    try:
        standins["numpy"], standins["numpy.linalg"], standins["numpy.random"] = \
            _numpy_standin(seed)
    except ImportError:  # numpy is a runtime dependency; tolerate its absence anyway
        pass
    return standins


ALLOWED_MODULES = ("collections", "dataclasses", "functools", "heapq", "itertools", "math",
                   "numpy", "numpy.linalg", "numpy.random", "random", "time", "typing",
                   "voxelsim")


def _import_refusal(name: str) -> str:
    return (f"import of '{name}' is not allowed; policies may import "
            f"{', '.join(m for m in ALLOWED_MODULES if '.' not in m)} (and numpy.linalg, numpy.random)")


class PolicyImportError(ImportError):
    """An import the sandbox refuses; the loader reports it under rule ``import``."""


def make_import(standins: dict, native_packages: frozenset = frozenset({"numpy"})):
    """The ``__import__`` policies get: allowed names map to stand-ins, the rest fail.

    ``native_packages`` are packages whose C code may import its own submodules while a
    policy frame is current (numpy's lazy imports; a PyO3 backend importing numpy).
    """

    def __import__(name, globals=None, locals=None, fromlist=(), level=0):
        if type(fromlist) is list and not fromlist and not level \
                and name.split(".")[0] in native_packages:
            # C code importing its own helpers while a policy frame is current: CPython's
            # PyImport_Import calls the frame's __import__ with an empty *list* fromlist and
            # then reads sys.modules itself. Policy import statements pass None or a tuple,
            # and policies cannot call __import__ directly, so nothing is returned to them.
            builtins.__import__(name, None, None, [], 0)
            return None
        if level:
            raise PolicyImportError("relative imports are not allowed in policies")
        if name not in standins:
            raise PolicyImportError(_import_refusal(name))
        module = standins[name]
        for item in fromlist or ():
            if item == "*":
                continue
            if not isinstance(item, str) or item.startswith("_") or item not in module.__all__:
                raise PolicyImportError(
                    f"cannot import name {item!r} from '{name}' in the policy sandbox")
        if fromlist:
            return module
        return standins[name.split(".")[0]]

    return __import__


# ---------------------------------------------------------------------------------------------
# Safe builtins: generous for ordinary code, nothing that introspects or does I/O
# ---------------------------------------------------------------------------------------------

SAFE_BUILTIN_NAMES = (
    "abs", "all", "any", "bin", "bool", "bytes", "callable", "chr", "complex", "dict",
    "divmod", "enumerate", "filter", "float", "frozenset", "hash", "hex", "int", "isinstance",
    "issubclass", "iter", "len", "list", "map", "max", "min", "next", "object", "oct", "ord",
    "pow", "range", "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum",
    "tuple", "zip", "super", "property", "staticmethod", "classmethod",
    "Exception", "ArithmeticError", "AssertionError", "AttributeError", "ImportError",
    "IndexError", "KeyError", "LookupError", "ModuleNotFoundError", "NotImplementedError",
    "OverflowError", "RuntimeError", "StopIteration", "TypeError", "ValueError",
    "ZeroDivisionError",
)
#: Provided by the sandbox itself (wrapped), in addition to SAFE_BUILTIN_NAMES.
WRAPPED_BUILTIN_NAMES = ("print", "hasattr")


class CapturedOutput:
    """What a policy prints, kept in memory up to ``limit`` characters, then a marker."""

    __slots__ = ("limit", "_chunks", "_size", "_truncated")

    def __init__(self, limit: int = DEFAULT_PRINT_LIMIT):
        self.limit = limit
        self._chunks: list[str] = []
        self._size = 0
        self._truncated = False

    def write(self, text: str) -> None:
        if self._truncated:
            return
        room = self.limit - self._size
        if len(text) > room:
            self._chunks.append(text[:room])
            self._chunks.append(f"\n[output truncated at {self.limit} characters]\n")
            self._size = self.limit
            self._truncated = True
            return
        self._chunks.append(text)
        self._size += len(text)

    def text(self) -> str:
        return "".join(self._chunks)


def make_print(output: CapturedOutput):
    """``print`` for policies: same signature, text goes to ``output``; no ``file=``."""

    def print(*values, sep=" ", end="\n", file=None, flush=False):
        if file is not None:
            raise TypeError("print(): file= is not available in policies")
        if sep is None:
            sep = " "
        if end is None:
            end = "\n"
        if not isinstance(sep, str) or not isinstance(end, str):
            raise TypeError("print(): sep and end must be str or None")
        if output._truncated:
            return
        output.write(sep.join(str(value) for value in values) + end)

    return print


def safe_hasattr(obj, name, /):
    """``hasattr`` that answers False for names a policy may not use (no probing internals)."""
    if not isinstance(name, str):
        raise TypeError("hasattr(): attribute name must be string")
    if attribute_denial(name) is not None:
        return False
    return builtins.hasattr(obj, name)


safe_hasattr.__name__ = safe_hasattr.__qualname__ = "hasattr"


def value_denial(value) -> str | None:
    """Why a policy may not hold ``value`` it read through a RUNTIME_CHECKED_ATTRIBUTES name."""
    if isinstance(value, memoryview):
        return "raw memory (memoryview), not available in policies; use tolist() or indexing"
    return None


def _is_numpy_value(obj) -> bool:
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(obj, (numpy.ndarray, numpy.generic))


def _has_object_dtype(dtype) -> bool:
    numpy = sys.modules.get("numpy")
    try:
        return bool(numpy.dtype(dtype).hasobject)
    except Exception:  # not a dtype numpy understands: view() will refuse it itself
        return False


def _safe_view(array):
    """``array.view`` without object dtypes (reinterpreting integers as object pointers, or
    pointers as integers); the only argument is the dtype."""
    def view(dtype=None):
        if array.dtype.hasobject or (dtype is not None and _has_object_dtype(dtype)):
            raise TypeError("view() to or from an object dtype is not available in policies; "
                            "use astype()")
        return array.view() if dtype is None else array.view(dtype)
    return view


def checked_attribute(obj, name: str):
    """``obj.<name>`` for the names in RUNTIME_CHECKED_ATTRIBUTES, refusing raw memory.

    On numpy arrays and scalars: ``resize`` is refused (in-place resizing with
    ``refcheck=False`` leaves views on freed memory), ``view`` refuses object dtypes.
    """
    if _is_numpy_value(obj):
        if name == "resize":
            raise AttributeError(f"'{type(obj).__name__}' attribute 'resize' resizes in place, "
                                 "not available in policies; use reshape() or a new array")
        if name == "view":
            return _safe_view(obj)
    value = getattr(obj, name)
    reason = value_denial(value)
    if reason is not None:
        raise AttributeError(f"'{type(obj).__name__}' attribute '{name}' is {reason}")
    return value


def policy_owner(obj):
    """``obj`` when it is an instance of a policy-defined class (or such a class), else
    AttributeError: ``_name`` attributes are the policy's own, never a library's."""
    cls = obj if isinstance(obj, type) else type(obj)
    if type.__getattribute__(cls, "__module__") == POLICY_MODULE_NAME:
        return obj
    raise AttributeError(f"attributes starting with '_' are only available on the policy's own "
                         f"objects, not on {type(obj).__name__}")


def build_class(func, name, *bases, **kwargs):
    """``__build_class__`` for policies: every base must be a class, never an instance.

    A non-class base makes Python call the instance's type as a metaclass (``class A(arr)``
    calls ``ndarray("A", bases, namespace)``), a known route to corrupted objects.
    """
    for index, base in enumerate(bases):
        if not isinstance(base, type):
            raise TypeError(f"class {name}: base {index + 1} is a {type(base).__name__} "
                            "instance, not a class")
    if kwargs:
        raise TypeError(f"class {name}: class keywords are not allowed")
    return builtins.__build_class__(func, name, *bases)


def make_builtins(standins: dict, output: CapturedOutput,
                  native_packages: frozenset = frozenset({"numpy"})) -> dict:
    """A fresh builtins dict for one policy module."""
    table = {name: getattr(builtins, name) for name in SAFE_BUILTIN_NAMES}
    table["print"] = make_print(output)
    table["hasattr"] = safe_hasattr
    # Needed by the compiled code itself; policy source cannot name them (underscore rule).
    table["__import__"] = make_import(standins, native_packages)
    table["__build_class__"] = build_class
    table[CHECKED_ATTRIBUTE_NAME] = checked_attribute
    table[POLICY_OWNER_NAME] = policy_owner
    table["__name__"] = "builtins"
    return table


def sandbox_globals(vxs_module, *, seed: int = 0, output: CapturedOutput | None = None,
                    ledger: "IntentLedger | None" = None) -> dict:
    """The globals a fresh policy module body runs in."""
    output = output if output is not None else CapturedOutput()
    standins = build_standins(vxs_module, seed=seed, ledger=ledger)
    backend_package = str(getattr(vxs_module, "__name__", "voxelsim")).split(".")[0]
    native = frozenset({"numpy", backend_package, "pyo3_runtime"})
    return {"__builtins__": make_builtins(standins, output, native),
            "__name__": POLICY_MODULE_NAME,
            "__doc__": None}


# ---------------------------------------------------------------------------------------------
# Helpers passed to act()
# ---------------------------------------------------------------------------------------------


class Helpers:
    """Conveniences passed to ``act``; thin wrappers over the backend, nothing hidden.

    ``plan_to(world, origin, dst, urgency, yaw, padding=0)`` plans an A* route from cell
    ``origin`` to cell ``dst`` keeping ``padding`` cells from obstacles and returns the
    ActionIntent (``AStarActionPlanner(padding).plan_action_py(world, origin, dst, urgency,
    yaw)``); it raises when no route exists. ``intent(urgency, yaw, moves)`` is
    ``ActionIntent(urgency, yaw, moves)``; urgency must be > 0. Intents from either are
    recorded in ``ledger`` (when given) for the trusted replay.

    Every ``Exception`` ``plan_to`` raises is counted by its text (``planner_failures()``, a
    dict of message to count, read by the runner for the episode summary) and re-raised.
    """

    __slots__ = ("_vxs", "_planners", "_ledger", "_failures")

    def __init__(self, vxs_module, ledger: "IntentLedger | None" = None):
        self._vxs = vxs_module
        self._planners = {}
        self._ledger = ledger
        self._failures = {}

    def plan_to(self, world, origin, dst, urgency, yaw, padding=0):
        planner = self._planners.get(padding)
        try:
            if planner is None:
                planner = self._vxs.AStarActionPlanner(padding)
                if isinstance(padding, int) and len(self._planners) < 16:
                    self._planners[padding] = planner
            urgency, yaw = _urgency_yaw(urgency, yaw)
            intent = planner.plan_action_py(world, origin, dst, urgency, yaw)
        except Exception as error:
            text = exception_text(error, 200)
            if text in self._failures or len(self._failures) < 32:
                self._failures[text] = self._failures.get(text, 0) + 1
            raise
        if self._ledger is not None:
            self._ledger.record(intent, urgency, yaw)
        return intent

    def planner_failures(self) -> dict:
        """{error text: count} of every failed ``plan_to`` so far (at most 32 texts)."""
        return dict(self._failures)

    def planner_failure_count(self) -> int:
        return sum(self._failures.values())

    def intent(self, urgency, yaw, moves):
        urgency, yaw = _urgency_yaw(urgency, yaw)
        intent = self._vxs.ActionIntent(urgency, yaw, moves)
        if self._ledger is not None:
            self._ledger.record(intent, urgency, yaw)
        return intent

    def __repr__(self):
        return "Helpers(plan_to, intent)"


# ---------------------------------------------------------------------------------------------
# Commands: what the agent is told, recorded for the trusted replay (bgen.runner.replay)
# ---------------------------------------------------------------------------------------------

#: Most intents one episode's ledger remembers (the oldest half is forgotten beyond it).
MAX_LEDGER_INTENTS = 50_000
#: Most moves of one recorded intent, and most commands recorded in one step.
MAX_COMMAND_MOVES = 100_000
MAX_STEP_COMMANDS = 64


#: Bounds of the numbers a command may carry (the trusted replay refuses others).
MAX_ABS_YAW = 1_000.0
MAX_URGENCY = 1_000.0


def _plain_float(value, name: str, low: float = -1e9, high: float = 1e9) -> float:
    """``value`` as a finite plain float in [low, high]; runs inside the policy's budget.

    Bool and non-numbers raise TypeError, NaN/±Infinity and out-of-range values ValueError.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(
            value, "__float__"):
        raise TypeError(f"{name}: expects a number, actual: {_type_name(value)}")
    number = float(value)
    if not (math.isfinite(number) and low <= number <= high):
        raise ValueError(f"{name}: expects a finite number in [{low:g}, {high:g}], "
                         f"actual: {number!r}")
    return number


def _urgency_yaw(urgency, yaw) -> tuple[float, float]:
    # urgency <= 0 stays the backend's own panic (voxelsim asserts urgency > 0).
    urgency = _plain_float(urgency, "urgency", -MAX_URGENCY, MAX_URGENCY)
    return urgency, _plain_float(yaw, "yaw", -MAX_ABS_YAW, MAX_ABS_YAW)


class IntentLedger:
    """Urgency and yaw of every intent built in this episode, keyed by identity.

    voxelsim's ActionIntent has no getters for urgency and yaw, so the constructors the
    policy reaches record them here; ``describe`` turns an intent into a plain command.
    """

    __slots__ = ("_known",)

    def __init__(self):
        self._known: dict[int, tuple] = {}

    def record(self, intent, urgency: float, yaw: float) -> None:
        known = self._known
        if len(known) >= MAX_LEDGER_INTENTS:
            for key in list(known)[: MAX_LEDGER_INTENTS // 2]:
                del known[key]
        known[id(intent)] = (intent, float(urgency), float(yaw))

    def describe(self, intent) -> dict | None:
        """``{"urgency", "yaw", "moves": [codes]}`` for a recorded intent, else None."""
        entry = self._known.get(id(intent))
        if entry is None or entry[0] is not intent:
            return None
        moves = [int(move) for move in intent.get_move_sequence()[:MAX_COMMAND_MOVES]]
        return {"urgency": entry[1], "yaw": entry[2], "moves": moves}


UNRECORDED_INTENT = ("the intent was not built in this episode by voxelsim.ActionIntent(...), "
                     "helpers.intent, helpers.plan_to or AStarActionPlanner.plan_action_py "
                     "(intents read back from the agent cannot be replayed); build a new one")


class IntentConstructor:
    """``voxelsim.ActionIntent`` as policies see it: builds the real intent and records it.

    ``isinstance(x, voxelsim.ActionIntent)`` keeps working (``__instancecheck__``).
    """

    __slots__ = ("_cls", "_ledger")

    def __init__(self, cls, ledger: IntentLedger):
        self._cls, self._ledger = cls, ledger

    def __call__(self, urgency, yaw, move_sequence):
        urgency, yaw = _urgency_yaw(urgency, yaw)
        intent = self._cls(urgency, yaw, move_sequence)
        self._ledger.record(intent, urgency, yaw)
        return intent

    def __instancecheck__(self, value) -> bool:
        return isinstance(value, self._cls)

    def __repr__(self):
        return "<class 'voxelsim.ActionIntent'>"


class PlannerConstructor:
    """``voxelsim.AStarActionPlanner`` as policies see it: planners whose intents are recorded."""

    __slots__ = ("_cls", "_ledger")

    def __init__(self, cls, ledger: IntentLedger):
        self._cls, self._ledger = cls, ledger

    def __call__(self, padding):
        return RecordingPlanner(self._cls(padding), self._ledger)

    def __instancecheck__(self, value) -> bool:
        return isinstance(value, RecordingPlanner)

    def __repr__(self):
        return "<class 'voxelsim.AStarActionPlanner'>"


class RecordingPlanner:
    """An A* planner whose ``plan_action_py`` records the intent it returns."""

    __slots__ = ("_planner", "_ledger")

    def __init__(self, planner, ledger: IntentLedger):
        self._planner, self._ledger = planner, ledger

    def plan_action_py(self, world, origin, dst, urgency, yaw):
        urgency, yaw = _urgency_yaw(urgency, yaw)
        intent = self._planner.plan_action_py(world, origin, dst, urgency, yaw)
        self._ledger.record(intent, urgency, yaw)
        return intent

    def __repr__(self):
        return "AStarActionPlanner()"


class AgentView:
    """The agent as ``act`` sees it: reads pass through, commands are recorded.

    ``perform_oneshot_py``/``push_back_intent_py`` need an exact ActionIntent this episode
    built; ``set_hold_py``/``set_pos`` take plain numbers (the runner ends the episode as
    ``teleport`` when they moved the agent); ``update_state_py`` is not offered. Every command
    goes to ``commands`` (a list the runner empties each step) before the backend sees it.
    """

    __slots__ = ("_agent", "_ledger", "_commands", "_intent_type")

    def __init__(self, agent, ledger: IntentLedger, commands: list, intent_type):
        self._agent, self._ledger, self._commands = agent, ledger, commands
        self._intent_type = intent_type

    def _command(self, intent, mode: str) -> None:
        if not _is_intent(intent, self._intent_type):
            raise TypeError(f"intent: expects an ActionIntent, actual: {_type_name(intent)}")
        described = self._ledger.describe(intent)
        if described is None:
            raise PolicyError(UNRECORDED_INTENT)
        if len(self._commands) >= MAX_STEP_COMMANDS:
            raise PolicyError(f"more than {MAX_STEP_COMMANDS} commands in one step")
        self._commands.append({"mode": mode, **described})

    def perform_oneshot_py(self, intent) -> None:
        self._command(intent, "Replace")
        self._agent.perform_oneshot_py(intent)

    def push_back_intent_py(self, intent) -> None:
        self._command(intent, "Push")
        self._agent.push_back_intent_py(intent)

    def set_hold_py(self, coord, yaw) -> None:
        coord = [int(_plain_float(v, "coord", -1e6, 1e6)) for v in list(coord)[:3]]
        yaw = _plain_float(yaw, "yaw", -MAX_ABS_YAW, MAX_ABS_YAW)
        self._commands.append({"mode": "Hold", "coord": coord, "yaw": yaw})
        self._agent.set_hold_py(coord, yaw)

    def set_pos(self, pos) -> None:
        pos = [_plain_float(v, "pos", -1e6, 1e6) for v in list(pos)[:3]]
        self._commands.append({"mode": "SetPos", "pos": pos})
        self._agent.set_pos(pos)

    def update_state_py(self, update) -> None:
        raise PolicyError("agent.update_state_py is not available to policies; return an "
                          "ActionIntent from act()")

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._agent, name)

    def __repr__(self):
        return "Agent()"


# ---------------------------------------------------------------------------------------------
# Loading and the contract check
# ---------------------------------------------------------------------------------------------

CONTRACT_SIGNATURES = {
    "init": ("init(config)", 1),
    "act": ("act(t, agent, world, fw, env, helpers)", 6),
    "collect": ("collect(step_ctx)", 1),
    "finalize": ("finalize(ep_ctx)", 1),
}


class LoadedPolicy:
    """A policy module that passed validation, ran its body and meets the contract."""

    __slots__ = ("init", "act", "collect", "finalize", "namespace", "intent_type", "intents",
                 "_output")

    def __init__(self, namespace: dict, output: CapturedOutput, intent_type,
                 intents: IntentLedger | None = None):
        self.namespace = namespace
        self._output = output
        self.intent_type = intent_type
        self.intents = intents if intents is not None else IntentLedger()
        self.init = namespace.get("init")
        self.act = namespace["act"]
        self.collect = namespace["collect"]
        self.finalize = namespace["finalize"]

    def output(self) -> str:
        """Everything the policy printed so far (capped; a marker says where it was cut)."""
        return self._output.text()

    def check_act_result(self, result):
        return check_act_result(result, self.intent_type)


def _type_name(value) -> str:
    return type(value).__name__


def _arity_problem(fn, count: int) -> str | None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*([None] * count))
    except TypeError:
        return f"found {fn.__name__}{signature}" if hasattr(fn, "__name__") else "wrong arity"
    return None


def check_contract(namespace: dict) -> None:
    """act, collect and finalize callable with their arity; init optional but callable."""
    for name in ("act", "collect", "finalize", "init"):
        expected, count = CONTRACT_SIGNATURES[name]
        verb = "may" if name == "init" else "must"
        if name not in namespace:
            if name == "init":
                continue
            raise PolicyLoadError(f"policy must define {expected}; found no '{name}' "
                                  "(rule: contract)", rule="contract")
        value = namespace[name]
        if not callable(value):
            raise PolicyLoadError(f"policy {verb} define {expected}; found '{name}' of type "
                                  f"{_type_name(value)} (rule: contract)", rule="contract")
        problem = _arity_problem(value, count)
        if problem is not None:
            raise PolicyLoadError(f"policy {verb} define {expected}; {problem} (rule: contract)",
                                  rule="contract")


def _bound_at_module_level(tree: ast.Module) -> dict[str, list[ast.AST]]:
    """Every name the module body binds (outside functions and classes) -> the binding nodes."""
    bound: dict[str, list[ast.AST]] = {}

    def visit(nodes):
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.setdefault(node.name, []).append(node)
                continue
            for child in ast.walk(node):
                if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                    bound.setdefault(child.id, []).append(child)
                elif isinstance(child, ast.alias):
                    bound.setdefault((child.asname or child.name).split(".")[0], []).append(child)
            for field_name in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, field_name, None)
                if isinstance(inner, list):
                    visit([n for n in inner if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                ast.ClassDef))])

    visit(tree.body)
    return bound


def _static_arity_problem(node: ast.FunctionDef, count: int) -> str | None:
    args = node.args
    positional = len(args.posonlyargs) + len(args.args)
    required = positional - len(args.defaults)
    kwonly_required = [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is None]
    fits = required <= count and (count <= positional or args.vararg is not None)
    if fits and not kwonly_required:
        return None
    return f"found {node.name}({ast.unparse(args)})"


def check_contract_source(source: str) -> None:
    """The AST rules and, as far as the source shows it without running, the contract.

    Nothing executes: a module-level ``def act/collect/finalize/init`` is checked for its
    arity, a required name the module never binds is reported missing, and a name bound some
    other way (an assignment, an import) is left to ``check_contract`` in the worker. Raises
    PolicyLoadError with ``rule`` (an AST rule, or ``contract``) and ``lineno`` when known.
    """
    tree = checked_tree(source)
    bound = _bound_at_module_level(tree)
    for name in ("act", "collect", "finalize", "init"):
        expected, count = CONTRACT_SIGNATURES[name]
        verb = "may" if name == "init" else "must"
        nodes = bound.get(name)
        if not nodes:
            if name == "init":
                continue
            raise PolicyLoadError(f"policy must define {expected}; found no '{name}' "
                                  "(rule: contract)", rule="contract")
        if len(nodes) == 1 and isinstance(nodes[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
            problem = _static_arity_problem(nodes[0], count)
            if problem is not None:
                raise PolicyLoadError(f"line {nodes[0].lineno}: policy {verb} define {expected}; "
                                      f"{problem} (rule: contract)", lineno=nodes[0].lineno,
                                      rule="contract")


def _policy_lineno(error: BaseException) -> int | None:
    lineno = None
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == POLICY_FILENAME:
            lineno = tb.tb_lineno
        tb = tb.tb_next
    return lineno


def _is_panic(error: BaseException) -> bool:
    return type(error).__name__ == "PanicException"


def load_policy(source: str, vxs_module, *, print_limit: int = DEFAULT_PRINT_LIMIT,
                seed: int = 0, code: types.CodeType | None = None) -> LoadedPolicy:
    """Validate, compile and run a policy's module body; check the contract.

    Call this only inside a worker process: the module body runs here. ``seed`` seeds the
    policy's ``random``. ``code``: what ``compile_policy(source)`` returned for this very
    source, when the caller compiled it once for all its episodes (validating and compiling
    costs ~15 ms for an 80-line policy). Raises PolicyLoadError (message, ``lineno``,
    ``rule``). A MemoryError and exceptions that do not derive from Exception (the worker's
    time limit) propagate unchanged, except a backend PanicException, which is the policy's
    fault.
    """
    if code is None:
        code = compile_policy(source)
    output = CapturedOutput(print_limit)
    ledger = IntentLedger()
    namespace = sandbox_globals(vxs_module, seed=seed, output=output, ledger=ledger)
    try:
        exec(code, namespace)
    except MemoryError:
        raise
    except BaseException as error:
        if not isinstance(error, Exception) and not _is_panic(error):
            raise
        lineno = _policy_lineno(error)
        if isinstance(error, PolicyImportError):
            rule, text = "import", str(error)
        else:
            rule = "load-exception"
            text = f"policy module raised {_type_name(error)} while loading: {error}"
        raise PolicyLoadError(f"{_where(lineno)}{text} (rule: {rule})",
                              lineno=lineno, rule=rule) from None
    check_contract(namespace)
    return LoadedPolicy(namespace, output, getattr(vxs_module, "ActionIntent", None), ledger)


# ---------------------------------------------------------------------------------------------
# Result checks (run in the worker, before anything crosses the process boundary)
# ---------------------------------------------------------------------------------------------

ACT_RESULT_EXPECTED = "act() must return an ActionIntent, (intent, 'Replace'|'Push') or None"
QUEUE_MODES = {"replace": "Replace", "push": "Push"}


def _is_intent(value, intent_type) -> bool:
    # Exactly the backend's class: voxelsim's PyO3 class cannot be subclassed, and a policy
    # subclass could override len()/get_move_sequence(), which the runner calls after act()
    # returned, outside the policy's time budget.
    if intent_type is not None:
        return type(value) is intent_type
    return type(value).__name__ == "ActionIntent"


def _intent_shown(value, intent_type) -> str:
    name = _type_name(value)
    if intent_type is not None and isinstance(value, intent_type):
        return f"{name} (a subclass of ActionIntent; return ActionIntent itself)"
    return name


def check_act_result(result, intent_type=None):
    """Normalise what act() returned to ``None`` or ``(intent, "Replace"|"Push")``.

    ``intent_type`` is the backend's ActionIntent class; without it, any object whose class
    is named ActionIntent passes (the backend re-checks when the intent is applied).
    """
    if result is None:
        return None
    if _is_intent(result, intent_type):
        return (result, "Replace")
    if isinstance(result, tuple):
        # tuple's own methods: a tuple subclass's __len__/__iter__ are policy code.
        length = tuple.__len__(result)
        if length != 2:
            raise PolicyError(f"{ACT_RESULT_EXPECTED}; actual: tuple of length {length}")
        intent, mode = tuple.__getitem__(result, 0), tuple.__getitem__(result, 1)
        if intent is not None and not _is_intent(intent, intent_type):
            raise PolicyError(f"{ACT_RESULT_EXPECTED}; actual: tuple "
                              f"({_intent_shown(intent, intent_type)}, {_type_name(mode)})")
        # str.lower, not mode.lower(): a str subclass's own lower() is policy code.
        normalized = QUEUE_MODES.get(str.lower(mode)) if isinstance(mode, str) else None
        if normalized is None:
            shown = repr(mode) if isinstance(mode, (str, int, float)) else _type_name(mode)
            raise PolicyError(f"{ACT_RESULT_EXPECTED}; actual: tuple with mode {shown[:40]}")
        return None if intent is None else (intent, normalized)
    raise PolicyError(f"{ACT_RESULT_EXPECTED}; actual: {_intent_shown(result, intent_type)}")


def _note_text(value) -> str:
    text = value if type(value) is str else str(value)   # str subclasses become plain str
    if len(text) > MAX_NOTE_CHARS:
        text = text[:MAX_NOTE_CHARS] + f"...[{len(text) - MAX_NOTE_CHARS} more characters]"
    return text


def check_notes(result, where: str = "collect") -> dict[str, str]:
    """Normalise what collect()/finalize() returned to a small ``dict[str, str]``.

    None counts as no notes; non-str values are converted with ``str()``; values longer
    than MAX_NOTE_CHARS are cut. A non-dict, a non-str key or too many keys is an error.
    """
    expected = f"{where}() must return a dict of str to str"
    if result is None:
        return {}
    if not isinstance(result, dict):
        raise PolicyError(f"{expected}; actual: {_type_name(result)}")
    if len(result) > MAX_NOTES:
        raise PolicyError(f"{expected}; actual: {len(result)} keys, exceeds limit of {MAX_NOTES}")
    notes = {}
    for key, value in dict.items(result):   # not result.items(): a subclass could override it
        if not isinstance(key, str):
            raise PolicyError(f"{expected}; actual: key {_note_text(repr(key))[:40]} of type "
                              f"{_type_name(key)}")
        try:
            notes[_note_text(key)[:200]] = _note_text(value)
        except Exception as error:
            raise PolicyError(f"{expected}; actual: value of {key[:40]!r} cannot be shown as "
                              f"text ({_type_name(error)}: {error})") from None
    return notes


# ---------------------------------------------------------------------------------------------
# Describing a policy's exception without running policy code
# ---------------------------------------------------------------------------------------------

_PLAIN_SCALARS = (str, int, float, complex, bool, type(None))
_PLAIN_CONTAINERS = (tuple, list, set, frozenset, dict)
_PLAIN_MAX_ITEMS = 1000


def _is_plain(value, depth: int = 0) -> bool:
    """Built only of exact builtin scalars and containers: its str()/repr() runs no policy code."""
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return True
    if kind not in _PLAIN_CONTAINERS or depth >= 4 or len(value) > _PLAIN_MAX_ITEMS:
        return False
    items = [x for pair in dict.items(value) for x in pair] if kind is dict else value
    return all(_is_plain(item, depth + 1) for item in items)


def _shown(value, as_repr: bool) -> str:
    if not _is_plain(value):
        return f"<{_type_name(value)} object>"
    try:
        return repr(value) if as_repr else str(value)
    except ValueError:  # an int too long to convert
        return f"<{_type_name(value)} too large to show>"


def exception_text(error: BaseException, limit: int = MAX_NOTE_CHARS) -> str:
    """``str(error)``, cut at ``limit`` characters, without running policy code.

    A policy's exception may carry an object whose ``str()`` calls back into policy methods
    (a ``collections.Counter`` subclass's repr calls its ``most_common``), and the runner
    describes errors after the policy's time budget ended. So the usual text is used only
    when the arguments are plain builtin values and the exception's ``__str__`` is built in;
    otherwise each argument that is not plain shows as ``<TypeName object>``.
    """
    args = error.args if type(error.args) is tuple else ()
    builtin_str = not isinstance(getattr(type(error), "__str__", None), types.FunctionType)
    text = None
    if builtin_str and _is_plain(args):
        try:
            text = str(error)
        except Exception:  # an int too long to convert: show the arguments one by one
            text = None
    if text is None:
        if len(args) == 1:
            text = _shown(args[0], isinstance(error, KeyError))
        elif args:
            text = "(" + ", ".join(_shown(arg, True) for arg in args[:20]) + ")"
        else:
            text = ""
    if len(text) > limit:
        text = text[:limit] + f"...[{len(text) - limit} more characters]"
    return text
