"""Scores and critiques: from episode summaries to ``aggregate.json`` and ``critique.txt``.

``aggregate(summaries)`` is the numbers; ``critique(...)`` is the words the LLM reads next
iteration. The critique names concrete causes — the policy's exceptions with their line and
the fix, timeouts, an agent that never moved, collision spikes, the closest approach to a
target never reached — and ends with a sampled trace of one failed episode. It never grows
past ``CRITIQUE_MAX_CHARS``: the trace is shortened first, then the text is cut with a marker.

Everything here is pure except ``evaluate_dir``/``write_evaluation``, which read and write
one iteration directory.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from pathlib import Path

CRITIQUE_MAX_CHARS = 6000
TRACE_MAX_CHARS = 2000
STUCK_PATH_M = 1.0            # an episode that flew less than this never really moved
COLLISION_SPIKE = 50          # contacts in one episode worth calling out on their own
FAILURE_REASONS = ("policy_error", "timeout", "memory", "crashed", "sim_error", "teleport",
                   "tampered")


# --- aggregate ------------------------------------------------------------------------------

def _stats(values: list) -> dict:
    values = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not values:
        return {"mean": None, "median": None, "min": None, "max": None}
    return {"mean": round(statistics.fmean(values), 3), "median": round(statistics.median(values), 3),
            "min": round(min(values), 3), "max": round(max(values), 3)}


def _error_of(summary: dict) -> dict | None:
    error = summary.get("error")
    if isinstance(error, dict):
        return error
    if isinstance(error, str) and error:
        return {"type": "", "message": error, "lineno": None, "phase": None}
    return None


def error_signatures(summaries: list[dict]) -> list[dict]:
    """Distinct policy errors (phase, type, message, line) with how often and in which seeds."""
    groups: dict[tuple, dict] = {}
    for summary in summaries:
        error = _error_of(summary)
        if error is None:
            continue
        key = (error.get("phase"), error.get("type"), str(error.get("message", ""))[:300],
               error.get("lineno"))
        group = groups.setdefault(key, {"phase": key[0], "type": key[1], "message": key[2],
                                        "lineno": key[3], "count": 0, "seeds": [],
                                        "reason": summary.get("reason")})
        group["count"] += 1
        group["seeds"].append(summary.get("seed"))
    return sorted(groups.values(), key=lambda g: -g["count"])


def aggregate(summaries: list[dict]) -> dict:
    """The numbers of one evaluated policy over its episodes (JSON-ready)."""
    n = len(summaries)
    successes = sum(1 for s in summaries if s.get("success") is True)
    reasons = Counter(str(s.get("reason") or ("success" if s.get("success") else "max_steps"))
                      for s in summaries)
    ok_steps = [s.get("steps") for s in summaries if s.get("success") is True]
    return {
        "episodes": n,
        "successes": successes,
        "success_rate": round(successes / n, 4) if n else 0.0,
        "seeds": [s.get("seed") for s in summaries],
        "reasons": dict(sorted(reasons.items())),
        "error_rate": round(sum(reasons[r] for r in FAILURE_REASONS) / n, 4) if n else 0.0,
        "steps": _stats([s.get("steps") for s in summaries]),
        "steps_to_success": _stats(ok_steps),
        "collisions_total": _stats([s.get("collisions_total") for s in summaries]),
        "path_len_est": _stats([s.get("path_len_est") for s in summaries]),
        "min_distance_to_target": _stats([s.get("min_distance_to_target") for s in summaries]),
        "final_distance_to_target": _stats([s.get("final_distance_to_target") for s in summaries]),
        "rejected_intents": sum(int(s.get("rejected_intents") or 0) for s in summaries),
        "sim_time_s": round(sum(float(s.get("sim_time_s") or 0.0) for s in summaries), 3),
        "wall_time_s": round(sum(float(s.get("wall_time_s") or 0.0) for s in summaries), 3),
        "errors": error_signatures(summaries),
        "sample_policy_summaries": [
            s["policy_summary"]["summary"][:300] for s in summaries
            if isinstance(s.get("policy_summary"), dict)
            and isinstance(s["policy_summary"].get("summary"), str)
            and s["policy_summary"]["summary"].strip()][:5],
    }


def load_failure_aggregate(message: str, lineno: int | None = None) -> dict:
    """The aggregate of a policy that never loaded: no episodes ran."""
    agg = aggregate([])
    agg["load_error"] = {"message": message, "lineno": lineno}
    return agg


def rank_key(agg: dict) -> tuple:
    """Higher is better: success rate, then ran at all, fewer errors, collisions, steps."""
    def mean(name):
        value = (agg.get(name) or {}).get("mean")
        return float(value) if value is not None else 0.0

    ran = 1 if agg.get("episodes") else 0
    return (float(agg.get("success_rate") or 0.0), ran, -float(agg.get("error_rate") or 0.0),
            -mean("collisions_total"), -mean("steps"))


# --- diagnosis ------------------------------------------------------------------------------

# (pattern over "Type: message", cause, fix), first match wins.
DIAGNOSES = (
    (r"cannot be interpreted as an integer",
     "a float was passed where voxelsim takes an integer voxel coordinate (a target computed "
     "with math.cos/sin or '/', or the float position from agent.get_pos())",
     "wrap every coordinate in int(round(...)) before plan_to / ActionIntent / set_hold_py, "
     "and use agent.get_coord_py() for the agent's integer cell"),
    (r"UnboundLocalError|referenced before assignment|cannot access local variable",
     "a function assigns a module-level variable without declaring it global, so Python "
     "treats it as a new local",
     "add `global NAME` as the first line of every function that assigns NAME (init, act, "
     "collect, finalize)"),
    (r"PanicException|urgency > 0",
     "an ActionIntent or plan got urgency <= 0; voxelsim asserts urgency > 0 and the panic is "
     "a BaseException that `except Exception` does not catch",
     "always pass an urgency in 0.3..1.0 (0.8 is a good default), never 0 or a negative value"),
    (r"Failed to create action intent|No viable path|Path to the target is blocked|"
     r"parameters specified were invalid",
     "the A* planner found no path: origin equal to the destination, origin inside an "
     "obstacle, or a destination that is inside terrain or walled in",
     "wrap helpers.plan_to in try/except Exception, skip planning when already at the "
     "destination, aim at a free cell (more negative z is higher, above the terrain), and fall "
     "back to a short manual intent such as helpers.intent(0.8, 0.0, [vxs.MoveDir.Up])"),
    (r"RecursionError",
     "a function calls itself without end",
     "replace the recursion with a loop bounded by a small count"),
    (r"(act\(\)|init\(\)|collect\(\)|finalize\(\)).*(expects|must return)|"
     r"expects .*actual|object cannot be converted to 'ActionIntent'",
     "a contract function returned or received something the runner cannot use",
     "act() returns an ActionIntent, (ActionIntent, 'Replace' | 'Push') or None; collect() and "
     "finalize() return a dict of str to str"),
    (r"takes \d+ positional arguments? but \d+ (were|was) given|missing \d+ required positional",
     "a function or voxelsim call got the wrong number of arguments",
     "check the call against the API cheatsheet: ActionIntent(urgency, yaw, moves) has three "
     "arguments; plan_to(world, origin, dst, urgency, yaw, padding); act(t, agent, world, fw, "
     "env, helpers)"),
    (r"argument '\w+'|object cannot be converted to|expected a sequence of length",
     "a voxelsim call got an argument of the wrong type or shape",
     "pass coordinates as lists of 3 ints, MoveDir values as vxs.MoveDir.Forward etc., and "
     "numbers for urgency and yaw"),
    (r"ImportError|ModuleNotFoundError|import .* not allowed|not allowed to import",
     "the policy imports a module the sandbox does not provide",
     "import only voxelsim (as vxs), math, random and typing; keep everything else in plain Python"),
    (r"NameError|is not defined",
     "a name is used that is not defined (a typo, a missing import or a builtin the sandbox "
     "does not offer)",
     "define the name at module level before use, or import math for math functions"),
    (r"AttributeError",
     "a method or attribute that the voxelsim API (or the object) does not have",
     "use only the calls listed in the API cheatsheet, with their exact names (e.g. "
     "agent.get_coord_py(), agent.get_action_py())"),
    (r"ZeroDivisionError",
     "a division by zero (often a distance of 0 when the agent is at a waypoint)",
     "guard divisions: compute the distance first and skip the step when it is 0"),
    (r"IndexError|KeyError",
     "a list index or dict key that does not exist (often a waypoint index past the end)",
     "check the index against len(...) before use, or use dict.get"),
    (r"SyntaxError|IndentationError",
     "the module is not valid Python",
     "return one complete Python module, without prose or markdown inside the code"),
    (r"TypeError",
     "a value of the wrong type was used",
     "check the types at the line shown; voxelsim takes ints for coordinates and floats for "
     "urgency and yaw"),
)


def diagnose(error_text: str) -> tuple[str, str] | None:
    """(cause, fix) for an error text such as ``"TypeError: ..."``; None when unknown."""
    for pattern, cause, fix in DIAGNOSES:
        if re.search(pattern, error_text):
            return cause, fix
    return None


def source_line(policy_code: str | None, lineno) -> str | None:
    if not policy_code or not isinstance(lineno, int) or lineno < 1:
        return None
    lines = policy_code.splitlines()
    return lines[lineno - 1].strip() if lineno <= len(lines) else None


def _describe_error(group: dict, n: int, policy_code: str | None) -> str:
    kind = group.get("type") or "error"
    phase = group.get("phase")
    where = f"{phase}()" if phase in ("init", "act", "collect", "finalize") else (phase or "the policy")
    seeds = ", ".join(str(s) for s in group["seeds"][:8])
    line = group.get("lineno")
    head = (f"{where} raised {kind}" + (f" at line {line}" if line else "")
            + f" in {group['count']}/{n} episodes (seeds {seeds}): {group['message']}")
    parts = [head]
    code = source_line(policy_code, line)
    if code:
        parts.append(f"   line {line}: {code}")
    found = diagnose(f"{kind}: {group['message']}")
    if found:
        parts.append(f"   Cause: {found[0]}.")
        parts.append(f"   Fix: {found[1]}.")
    return "\n".join(parts)


def load_error_critique(message: str, lineno: int | None, policy_code: str | None) -> str:
    """The critique of a policy that did not load (no episode ran)."""
    lines = ["The policy did not load, so no episode ran.",
             "Load error" + (f" at line {lineno}" if lineno else "") + f": {message}"]
    code = source_line(policy_code, lineno)
    if code:
        lines.append(f"   line {lineno}: {code}")
    found = diagnose(message)
    if found:
        lines.append(f"   Cause: {found[0]}.")
        lines.append(f"   Fix: {found[1]}.")
    lines.append("Return one complete module that defines act(t, agent, world, fw, env, helpers) "
                 "and uses only the API in the cheatsheet.")
    return "\n".join(lines)


def _fmt(value, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _metres(value) -> str:
    return "n/a" if value is None else f"{value:.1f} m"


def findings(agg: dict, summaries: list[dict], policy_code: str | None = None) -> list[str]:
    """Concrete problems, most important first, each a short paragraph."""
    n = agg["episodes"]
    found: list[str] = []
    for group in agg["errors"]:
        if group.get("reason") in ("policy_error", None):
            found.append(_describe_error(group, n, policy_code))
    reasons = agg["reasons"]
    if reasons.get("timeout"):
        detail = ""
        for group in agg["errors"]:
            if group.get("reason") == "timeout":
                line = group.get("lineno")
                code = source_line(policy_code, line)
                detail = f" ({group['message']}" + (f"; line {line}: {code}" if code else "") + ")"
                break
        found.append(f"{reasons['timeout']}/{n} episodes timed out{detail}: an act() call took too "
                     "long or looped forever. Keep act() short: no while loops waiting for the "
                     "simulator, no planning to far targets on every step; plan once when "
                     "agent.get_action_py() is None and return.")
    if reasons.get("memory"):
        found.append(f"{reasons['memory']}/{n} episodes ran out of memory: do not keep growing "
                     "lists or dicts across steps; store only what the next step needs.")
    if reasons.get("teleport"):
        found.append(f"{reasons['teleport']}/{n} episodes were stopped because the agent jumped "
                     "(set_pos / set_hold_py move it instantly): fly with intents only.")
    if reasons.get("tampered"):
        found.append(f"{reasons['tampered']}/{n} episodes were tampered: the reported flight "
                     "did not match the replay of the agent's commands; move the agent only by "
                     "returning intents from act().")
    for reason, text in (("crashed", "the worker process died"),
                         ("sim_error", "the simulator failed outside the policy")):
        if reasons.get(reason):
            found.append(f"{reasons[reason]}/{n} episodes ended with {reason}: {text}; this is "
                         "usually not the policy's fault, but avoid extreme targets.")
    stuck = [s for s in summaries if s.get("reason") == "max_steps"
             and isinstance(s.get("path_len_est"), (int, float)) and s["path_len_est"] < STUCK_PATH_M]
    if stuck:
        found.append(f"{len(stuck)}/{n} episodes never moved (flew < {STUCK_PATH_M:g} m in "
                     f"{stuck[0].get('steps')} steps): act() returned None every step, the planner "
                     "failed every call, or a new intent replaced the old one each step before it "
                     "could fly. Plan only when agent.get_action_py() is None (it is None while "
                     "holding) and return the intent.")
    if agg["rejected_intents"]:
        found.append(f"{agg['rejected_intents']} intents returned by act() were rejected by the "
                     "agent: return a valid ActionIntent with a non-empty move list.")
    collisions = agg["collisions_total"]
    if collisions["mean"]:
        worst = max(summaries, key=lambda s: s.get("collisions_total") or 0)
        spike = (f"; seed {worst.get('seed')} alone had {worst.get('collisions_total')}"
                 if (worst.get("collisions_total") or 0) >= COLLISION_SPIKE else "")
        found.append(f"Collisions: {collisions['mean']:g} contacts per episode on average "
                     f"(max {collisions['max']:g}){spike}. Plan with padding 1-2, fly higher (more "
                     "negative z) over terrain, and replan when collisions start.")
    missed = [s for s in summaries if s.get("reason") == "max_steps" and s not in stuck]
    if missed:
        closest = min((s for s in missed if s.get("min_distance_to_target") is not None),
                      key=lambda s: s["min_distance_to_target"], default=None)
        if closest is not None:
            found.append(
                f"{len(missed)}/{n} episodes ran out of steps without reaching the target "
                f"(success needs < 1.0 m). Closest approach {closest['min_distance_to_target']:.1f} m "
                f"(seed {closest.get('seed')}), final distance "
                f"{_fmt(closest.get('final_distance_to_target'))} m. Plan straight to the target "
                "coordinate itself, replan from agent.get_coord_py() when idle, and use urgency "
                "0.7-1.0 so the flight fits in the step budget.")
        else:
            found.append(f"{len(missed)}/{n} episodes ran out of steps without succeeding.")
    if not found and agg["success_rate"] >= 1.0:
        found.append(f"All {n} episodes succeeded (mean {_fmt(agg['steps']['mean'])} steps, "
                     f"{_fmt(collisions['mean'])} collisions). Keep the approach; change it only to "
                     "remove collisions or shorten the flight without adding risk.")
    return found


def _compact_step(step) -> str:
    if not isinstance(step, dict):
        return json.dumps(step, default=str)[:200]
    keep = {}
    for key in ("step", "agent_coord", "origin", "distance_to_target", "collisions_count",
                "command_len", "policy_log"):
        if key in step:
            value = step[key]
            if isinstance(value, float):
                value = round(value, 2)
            keep[key] = value
    return json.dumps(keep, default=str, separators=(",", ":"))[:240]


def sample_trace(trace, max_chars: int = TRACE_MAX_CHARS) -> str:
    """A few steps from the start, the middle and the end of a failed episode's trace."""
    if isinstance(trace, dict):
        steps = next((trace[k] for k in ("steps", "last_steps", "trace") if isinstance(trace.get(k), list)), [])
        extra = []
        error = trace.get("error") if isinstance(trace.get("error"), dict) else {}
        for key, text in (("traceback", error.get("traceback") or trace.get("traceback")),
                          ("policy output", trace.get("policy_output") or trace.get("output"))):
            if isinstance(text, str) and text.strip():
                text = text.strip()
                extra.append(f"{key}:\n" + (text if len(text) <= 600 else "…" + text[-600:]))
    else:
        steps, extra = (trace if isinstance(trace, list) else []), []
    if len(steps) > 24:
        stride = max(1, (len(steps) - 16) // 9)
        start, middle, end = steps[:4], steps[4 + stride:len(steps) - 12:stride][:8], steps[-12:]
    else:
        start, middle, end = [], [], steps
    groups = [[_compact_step(s) for s in group] for group in (start, middle, end)]
    extra_chars = sum(len(e) + 1 for e in extra)
    # Over budget: drop middle steps first, then the start, then the oldest of the end.
    for group in (groups[1], groups[0], groups[2]):
        while group and sum(len(x) + 1 for g in groups for x in g) + extra_chars > max_chars:
            group.pop(0 if group is groups[2] else len(group) // 2)
    text = "\n".join([x for g in groups for x in g] + extra)
    if len(text) > max_chars:
        text = text[:max_chars] + "\n[trace truncated]"
    return text


def cap(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` with a marker that says how much was dropped."""
    if len(text) <= max_chars:
        return text
    marker = "\n[critique truncated: {} more characters]"
    keep = max_chars - len(marker.format(len(text)))
    return text[:keep] + marker.format(len(text) - keep)


def critique(agg: dict, summaries: list[dict], *, policy_code: str | None = None,
             trace=None, trace_seed=None, max_chars: int = CRITIQUE_MAX_CHARS) -> str:
    """The feedback text for the next iteration (bounded by ``max_chars``)."""
    n = agg["episodes"]
    if agg.get("load_error"):
        err = agg["load_error"]
        return cap(load_error_critique(err.get("message", ""), err.get("lineno"), policy_code), max_chars)
    if n == 0:
        return "No episode ran."
    ends = ", ".join(f"{k} {v}" for k, v in agg["reasons"].items())
    head = [
        f"Result: {agg['successes']}/{n} episodes reached the target "
        f"(success rate {agg['success_rate']:.2f}). Episode ends: {ends}.",
        f"Steps mean {_fmt(agg['steps']['mean'])} (min {_fmt(agg['steps']['min'], 0)}, max "
        f"{_fmt(agg['steps']['max'], 0)}); collisions mean {_fmt(agg['collisions_total']['mean'])}; "
        f"path length mean {_metres(agg['path_len_est']['mean'])}; closest approach to the target "
        f"mean {_metres(agg['min_distance_to_target']['mean'])}.",
    ]
    problems = findings(agg, summaries, policy_code)
    body = "\n".join(head)
    if problems:
        body += "\n\nProblems, most important first:\n" + "\n".join(
            f"{i}. {p}" for i, p in enumerate(problems, 1))
    if agg["sample_policy_summaries"]:
        body += "\n\nThe policy's own episode summaries:\n" + "\n".join(
            f"- {s}" for s in agg["sample_policy_summaries"][:3])
    if trace is not None:
        budget = max_chars - len(body) - 120
        if budget > 300:
            sampled = sample_trace(trace, min(TRACE_MAX_CHARS, budget))
            if sampled:
                body += (f"\n\nTrace of failed episode (seed {trace_seed}), sampled from its "
                         f"last steps:\n{sampled}")
    return cap(body, max_chars)


# --- one iteration directory -------------------------------------------------------------------

def read_summaries(root: Path) -> list[dict]:
    """Summaries under ``root/ep_*/summary.*.json``, in seed order (unreadable files skipped)."""
    summaries = []
    for path in root.glob("ep_*/summary.*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            summaries.append(data)
    return sorted(summaries, key=lambda s: (s.get("seed") is None, s.get("seed") or 0))


def first_failed_trace(root: Path, summaries: list[dict]):
    """(seed, trace) of the first failed episode that left a trace file, else (None, None)."""
    for summary in summaries:
        if summary.get("success"):
            continue
        seed = summary.get("seed")
        path = root / f"ep_{seed}" / f"trace.{seed}.json"
        try:
            return seed, json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return None, None


def evaluate_dir(root: Path, summaries: list[dict] | None = None, *,
                 policy_code: str | None = None,
                 max_chars: int = CRITIQUE_MAX_CHARS) -> tuple[dict, str]:
    """(aggregate, critique) for one evaluated policy directory."""
    root = Path(root)
    summaries = read_summaries(root) if summaries is None else summaries
    agg = aggregate(summaries)
    seed, trace = first_failed_trace(root, summaries)
    return agg, critique(agg, summaries, policy_code=policy_code, trace=trace, trace_seed=seed,
                         max_chars=max_chars)


def write_evaluation(root: Path, agg: dict, text: str) -> None:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "aggregate.json").write_text(json.dumps(agg, indent=2), encoding="utf-8")
    (root / "critique.txt").write_text(text + "\n", encoding="utf-8")
