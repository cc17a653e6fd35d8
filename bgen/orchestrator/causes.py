"""What went wrong, from the evidence: error and refusal texts mapped to a cause and a fix.

``CAUSES`` is a table of rows ``Cause(name, pattern, cause, fix)``; ``diagnose(text)`` returns
the first row whose pattern matches ``text`` (``"Type: message"`` of an exception, an agent's
refusal, a planner's message). Rows are ordered most specific first: each Rust assertion or
panic text has its own row ahead of the catch-all for panics, each planner message its own row
ahead of anything about exceptions in general, so a failure is never given another failure's
cause. Where a fact comes from voxelsim, the row says which file states it.

``evidence(summaries)`` sums what episodes recorded besides errors (the agent's refusals by
reason, ``helpers.plan_to`` failures by message, the urgency range of the intents act()
returned) into the shape ``aggregate.json`` stores, and ``evidence_findings(agg)`` turns it into
critique paragraphs, each naming its cause and fix.

Pure: no I/O, no simulator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Cause:
    """One row of the table: ``pattern`` is a regular expression searched in the evidence text."""

    name: str
    pattern: str
    cause: str
    fix: str


CAUSES: tuple[Cause, ...] = (
    # --- Rust assertions and panics, each its own cause (PanicException is a BaseException) ---
    Cause("collisions_size",
          r"dims\.x < 1\.0",
          "world.collisions_py got a box extent of 1.0 or more; voxelsim asserts every extent < 1 "
          "(voxelsim/src/env.rs, collisions) and the panic is a BaseException that `except "
          "Exception` does not catch, so the episode ended",
          "keep all three extents of collisions_py below 1.0 (the runner uses [0.5, 0.5, 0.3]); to "
          "ask whether a cell or a column is free, read world.dense_snapshot_py(centre, half_dims)"
          ".data_py() instead (0 means empty)"),
    Cause("urgency",
          r"urgency > 0",
          "an ActionIntent or plan got urgency <= 0; voxelsim asserts urgency > 0 "
          "(voxelsim/src/agent/mod.rs, ActionIntent::new) and the panic is a BaseException that "
          "`except Exception` does not catch",
          "always pass an urgency in 0.3..1.0 (0.8 is a good default), never 0, a negative value "
          "or a value computed to 0 (a distance, a product with 0)"),
    Cause("empty_intent",
          r"move_sequence\.is_empty\(\)",
          "an ActionIntent with no moves ended up in the agent's queue; voxelsim asserts every "
          "queued intent has at least one move (voxelsim/src/agent/mod.rs) and the panic ends "
          "the episode",
          "return None instead of an intent whose move list is empty (check len(moves) > 0 first)"),
    Cause("snapshot_size",
          r"capacity overflow",
          "world.dense_snapshot_py got half dimensions that are negative or so large the cell count "
          "overflows; voxelsim panics",
          "pass small non-negative half dimensions, e.g. [2, 2, 2] for the 5x5x5 cube around a cell"),
    Cause("panic",
          r"PanicException|panicked",
          "voxelsim panicked on a value outside its limits (the assertion text above says which); "
          "a panic is a BaseException that `except Exception` does not catch",
          "find the voxelsim call at the line shown and keep its arguments within the limits the "
          "cheatsheet states"),
    # --- the agent refusing an intent (voxelsim/src/agent/mod.rs, ActionError) -----------------
    Cause("duplicate_cell",
          r"Duplicate centroid",
          "the intent's path visits a cell twice or comes back to the cell it starts from "
          "(Forward then Back, Up then Down); voxelsim refuses such an intent ('Duplicate "
          "centroid', voxelsim/src/agent/mod.rs) and the agent keeps doing what it was doing",
          "never put opposite moves in one intent; send the way back as a new intent once "
          "agent.get_action_py() is None again, or plan with helpers.plan_to, whose paths never "
          "repeat a cell"),
    Cause("no_commands",
          r"No commands",
          "act() returned an intent with an empty move list; the agent refuses it ('No "
          "commands') and keeps doing what it was doing",
          "return None while nothing should change; build intents with at least one move"),
    Cause("action_state",
          r"No intent|Invalid progress",
          "the agent could not fit the intent into the action it was flying (its queue was "
          "already used up)",
          "send a new intent only when agent.get_action_py() is None, with 'Replace' (the default) "
          "rather than 'Push'"),
    # --- the A* planner (voxelsim/src/planner/astar.rs, planner/mod.rs PlannerError) ----------
    Cause("plan_same_cell",
          r"parameters specified were invalid",
          "helpers.plan_to was asked for a path from a cell to itself (origin == dst); the planner "
          "refuses it with 'The parameters specified were invalid.'",
          "compare agent.get_coord_py() with the goal first and move on to the next goal (or "
          "return None) when they are equal"),
    Cause("plan_origin_blocked",
          r"Path to the target is blocked",
          "the agent's own cell is within `padding` cells of an obstacle, so the planner refuses to "
          "start ('Path to the target is blocked.')",
          "retry with a smaller padding (2, then 1, then 0) or move one cell away from the "
          "obstacle (usually Up) before planning again"),
    Cause("plan_no_path",
          r"No viable path|Destination voxel is filled",
          "the planner found no path: the destination is inside terrain, a tree or a tower (or "
          "within `padding` of one), walled in, or so far that the search gave up after 200,000 "
          "expanded cells",
          "aim at a free cell (check it with world.dense_snapshot_py; more negative z is higher), "
          "lower the padding, or fly long trips as several shorter legs; wrap every plan_to in "
          "try/except Exception"),
    Cause("plan_failed",
          r"Failed to create action intent",
          "the A* planner found no path",
          "wrap helpers.plan_to in try/except Exception and fall back to a short manual intent "
          "such as helpers.intent(0.8, 0.0, [vxs.MoveDir.Up])"),
    # --- Python errors in the policy --------------------------------------------------------------
    Cause("float_coordinate",
          r"cannot be interpreted as an integer",
          "a float was passed where voxelsim takes an integer voxel coordinate (a target computed "
          "with math.cos/sin or '/', or the float position from agent.get_pos())",
          "wrap every coordinate in int(round(...)) before plan_to / ActionIntent / set_hold_py, "
          "and use agent.get_coord_py() for the agent's integer cell"),
    Cause("missing_global",
          r"UnboundLocalError|referenced before assignment|cannot access local variable",
          "a function assigns a module-level variable without declaring it global, so Python "
          "treats it as a new local",
          "add `global NAME` as the first line of every function that assigns NAME (init, act, "
          "collect, finalize)"),
    Cause("recursion",
          r"RecursionError",
          "a function calls itself without end",
          "replace the recursion with a loop bounded by a small count"),
    Cause("contract",
          r"(act\(\)|init\(\)|collect\(\)|finalize\(\)).*(expects|must return)|"
          r"expects .*actual|object cannot be converted to 'ActionIntent'",
          "a contract function returned or received something the runner cannot use",
          "act() returns an ActionIntent, (ActionIntent, 'Replace' | 'Push') or None; collect() and "
          "finalize() return a dict of str to str"),
    Cause("arity",
          r"takes \d+ positional arguments? but \d+ (were|was) given|missing \d+ required positional",
          "a function or voxelsim call got the wrong number of arguments",
          "check the call against the API cheatsheet: ActionIntent(urgency, yaw, moves) has three "
          "arguments; plan_to(world, origin, dst, urgency, yaw, padding); act(t, agent, world, fw, "
          "env, helpers)"),
    Cause("argument_type",
          r"argument '\w+'|object cannot be converted to|expected a sequence of length",
          "a voxelsim call got an argument of the wrong type or shape",
          "pass coordinates as lists of 3 ints, MoveDir values as vxs.MoveDir.Forward etc., and "
          "numbers for urgency and yaw"),
    Cause("import",
          r"ImportError|ModuleNotFoundError|import .* not allowed|not allowed to import",
          "the policy imports a module the sandbox does not provide",
          "import only voxelsim (as vxs), math, random, typing, collections, heapq, itertools and "
          "numpy; keep everything else in plain Python"),
    Cause("undefined_name",
          r"NameError|is not defined",
          "a name is used that is not defined (a typo, a missing import or a builtin the sandbox "
          "does not offer)",
          "define the name at module level before use, or import math for math functions"),
    Cause("attribute",
          r"AttributeError",
          "a method or attribute that the voxelsim API (or the object) does not have",
          "use only the calls listed in the API cheatsheet, with their exact names (e.g. "
          "agent.get_coord_py(), agent.get_action_py())"),
    Cause("division_by_zero",
          r"ZeroDivisionError",
          "a division by zero (often a distance of 0 when the agent is at a waypoint)",
          "guard divisions: compute the distance first and skip the step when it is 0"),
    Cause("index",
          r"IndexError|KeyError",
          "a list index or dict key that does not exist (often a waypoint index past the end)",
          "check the index against len(...) before use, or use dict.get"),
    Cause("syntax",
          r"SyntaxError|IndentationError",
          "the module is not valid Python",
          "return one complete Python module, without prose or markdown inside the code"),
    Cause("type",
          r"TypeError",
          "a value of the wrong type was used",
          "check the types at the line shown; voxelsim takes ints for coordinates and floats for "
          "urgency and yaw"),
)

_COMPILED = tuple((row, re.compile(row.pattern)) for row in CAUSES)


def diagnose(text: str) -> Cause | None:
    """The first row of ``CAUSES`` whose pattern occurs in ``text``; None when none does."""
    for row, pattern in _COMPILED:
        if pattern.search(text):
            return row
    return None


def cause_by_name(name: str) -> Cause:
    """The row called ``name``; KeyError naming the choices otherwise."""
    for row in CAUSES:
        if row.name == name:
            return row
    raise KeyError(f"cause: expects one of {', '.join(r.name for r in CAUSES)}, actual: {name!r}")


# --- evidence besides errors ----------------------------------------------------------------------

REPEATED_PLAN_FAILURES = 10      # failed plan_to calls in one episode worth a finding
URGENCY_FOR_THE_BUDGET = 0.7     # below this, the speed hint is worth giving


def _counts(summaries: list[dict], key: str) -> dict:
    total: dict[str, int] = {}
    for summary in summaries:
        found = summary.get(key)
        if isinstance(found, dict):
            for text, count in found.items():
                if isinstance(count, int) and not isinstance(count, bool):
                    total[str(text)] = total.get(str(text), 0) + count
    return dict(sorted(total.items(), key=lambda item: (-item[1], item[0])))


def urgency_range(summaries: list[dict]) -> list | None:
    """[min, max] urgency over every intent act() returned, or None when no episode knew it."""
    low = high = None
    for summary in summaries:
        found = summary.get("urgency")
        if isinstance(found, list) and len(found) == 2:
            low = found[0] if low is None else min(low, found[0])
            high = found[1] if high is None else max(high, found[1])
    return None if low is None else [round(float(low), 3), round(float(high), 3)]


def evidence(summaries: list[dict]) -> dict:
    """The aggregate's evidence fields: ``rejections`` (agent's refusal text -> count),
    ``planner_failures`` (plan_to error text -> count), ``urgency`` ([min, max] or None)."""
    return {"rejections": _counts(summaries, "rejections"),
            "planner_failures": _counts(summaries, "planner_failures"),
            "urgency": urgency_range(summaries)}


def _explained(text: str) -> str:
    row = diagnose(text)
    return f"\n   Cause: {row.cause}.\n   Fix: {row.fix}." if row else ""


def evidence_findings(agg: dict) -> list[str]:
    """Paragraphs about refused intents (one per reason) and failed plans (one per message)."""
    found = []
    for reason, count in (agg.get("rejections") or {}).items():
        found.append(f"{count} intents returned by act() were refused by the agent with "
                     f"\"{reason}\"; the agent went on with its previous action." + _explained(reason))
    failures = agg.get("planner_failures") or {}
    total = sum(failures.values())
    if total >= REPEATED_PLAN_FAILURES:
        for message, count in failures.items():
            found.append(f"helpers.plan_to failed {count} times with \"{message}\" (the policy "
                         f"caught it, so the episode went on)." + _explained(message))
    return found


def speed_hint(agg: dict) -> str:
    """Advice on urgency that never contradicts the intents the policy sent: given only when
    the recorded urgency stayed below ``URGENCY_FOR_THE_BUDGET``; empty when unknown or already
    high."""
    urgency = agg.get("urgency")
    if not urgency or urgency[1] >= URGENCY_FOR_THE_BUDGET:
        return ""
    return (f" The intents used urgency {urgency[0]:g}..{urgency[1]:g}; the drone cruises at about "
            f"2.7 m/s x urgency, so a higher urgency (0.7-1.0) fits more flight into the steps.")


# --- patterns of a whole flight (bgen/orchestrator/flight_analysis.py) ----------------------------

FLIGHT_CAUSES: dict[str, Cause] = {
    "no_progress": Cause(
        "no_progress", "",
        "the policy kept doing the same thing (holding, re-planning to a goal it cannot reach, or "
        "flying a route that does not lead to the target) long after it stopped getting closer",
        "keep the best distance to the target in module state; when it has not shrunk for a few "
        "seconds, change course: plan to config['target'] itself from agent.get_coord_py(), lower "
        "the padding (unless a standoff or clearance check needs the room), or pick a free "
        "waypoint beside or above the obstacle"),
    "oscillation": Cause(
        "oscillation", "",
        "the policy alternates between goals, or replaces the action before it finishes with one "
        "that sends the agent back, so it shuttles between the same few cells",
        "keep one goal until the agent is within 1.0 of it or it proved unreachable; plan only "
        "when agent.get_action_py() is None; never return to a waypoint already passed"),
    "climb": Cause(
        "climb", "",
        "the policy kept adding Up moves (typically the fallback after a failed plan, repeated "
        "each time planning fails again), so the drone rose far above the start and the target "
        "and every plan from up there was long or failed",
        "bound the height: never climb more than about 10 m above the higher of the start and "
        "the target (z more negative is higher); after a failed plan, try a smaller padding or "
        "a nearby free goal instead of climbing again, and descend toward the target's z"),
    "swinging_action": Cause(
        "swinging_action", "",
        "an action advances only while the drone is within 1 m of its path (voxelsim's chaser); "
        "off it, the drone chases a target that no longer moves on and can swing back and forth "
        "around it (seen after a Replace given while the drone flew fast the other way), and "
        "nothing replaced the action",
        "note the step each action was given and its length; when it is still set well past the "
        "time its length needs (N cells take about 50 + 37*N/urgency steps), replace it with a "
        "new plan from agent.get_coord_py()"),
    "stalled_action": Cause(
        "stalled_action", "",
        "the drone settled more than 1 m off the action's path, where voxelsim's chaser no "
        "longer advances the action, and nothing replaced it (seen at urgency 1.0 and above on "
        "zig-zag paths)",
        "keep the agent's position of about a second ago in module state; when an action is set "
        "but the drone has moved less than 0.1 m since then, plan or build a new intent from "
        "agent.get_coord_py() and return it with \"Replace\"; urgency 0.9 avoided it on the "
        "path it was seen on"),
    "idle_end": Cause(
        "idle_end", "",
        "the policy stopped giving actions although a failing check (listed above) still needed "
        "the drone elsewhere; with no action the drone does not move, and an action ends up to "
        "0.9 m from its end cell, on any side of it",
        "whenever agent.get_action_py() is None, compare agent.get_pos() with what each check "
        "still needs and plan again from agent.get_coord_py() if it is not met; for a point a "
        "check needs within r, end the action on a cell at most r - 0.9 m from it"),
    "plan_failures": Cause(
        "plan_failures", "",
        "helpers.plan_to kept failing and the policy kept asking again (see the messages for why)",
        "do not repeat a plan that failed from the same cell to the same goal; change the goal, "
        "the padding or the origin first"),
}
