"""Scores and critiques: from episode summaries to ``aggregate.json`` and ``critique.txt``.

``aggregate(summaries)`` is the numbers; ``critique(...)`` is the words the LLM reads next
iteration. The critique names concrete causes — the policy's exceptions with their line and
the cause and fix from ``causes.CAUSES``, the agent's refusals and failed plans by their text,
stuck and looping flights (``flight_analysis``) next to the policy's own summary of the
episode, timeouts, an agent that never moved, collision spikes, the closest approach to a
target never reached — and ends with a sampled trace of one failed episode. It never grows
past ``CRITIQUE_MAX_CHARS``: the trace is shortened first, then the text is cut with a marker.

Everything here is pure except ``evaluate_dir``/``read_flights``/``write_evaluation``, which
read and write one iteration directory.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path

from bgen.orchestrator import causes, flight_analysis
from bgen.runner import taskspec
from bgen.runner.metrics import MAX_EPISODE_NOTE_CHARS

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


def _score(summary: dict) -> float:
    """An episode's task-spec score; 0 for an episode that reported none (it never flew)."""
    value = summary.get("score")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def check_stats(summaries: list[dict]) -> list[dict]:
    """Per check of the task spec, in spec order: ``{"index", "kind", "episodes", "passed",
    "pass_rate", "mean_score"}`` over every episode (one that reported no checks fails each
    with score 0)."""
    width = max((len(s["checks"]) for s in summaries if isinstance(s.get("checks"), list)),
                default=0)
    out = []
    n = len(summaries)
    for i in range(width):
        kind, passed, scores = None, 0, []
        for summary in summaries:
            checks = summary.get("checks") if isinstance(summary.get("checks"), list) else []
            check = checks[i] if i < len(checks) and isinstance(checks[i], dict) else {}
            kind = kind or check.get("kind")
            passed += check.get("passed") is True
            score = check.get("score")
            scores.append(float(score) if isinstance(score, (int, float)) else 0.0)
        out.append({"index": i, "kind": kind, "episodes": n, "passed": passed,
                    "pass_rate": round(passed / n, 4) if n else 0.0,
                    "mean_score": round(sum(scores) / n, 4) if n else 0.0})
    return out


#: What ``{"objective": {"minimize": name}}`` minimises: the summary field averaged over episodes.
OBJECTIVE_FIELDS = {"time": "sim_time_s", "path_length": "path_len_est",
                    "collisions": "collisions_total"}


def objective_value(summaries: list[dict], objective: str | None) -> float | None:
    """The mean over episodes of the objective's summary field (lower is better), or None."""
    if objective not in OBJECTIVE_FIELDS or not summaries:
        return None
    values = [summary.get(OBJECTIVE_FIELDS[objective]) for summary in summaries]
    values = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return round(statistics.fmean(values), 4) if values else None


def aggregate(summaries: list[dict], objective: str | None = None) -> dict:
    """The numbers of one evaluated policy over its episodes (JSON-ready).

    ``objective`` is the task spec's ``objective.minimize`` (``time``, ``path_length``,
    ``collisions``), reported as ``{"minimize", "value"}``.
    """
    n = len(summaries)
    successes = sum(1 for s in summaries if s.get("success") is True)
    reasons = Counter(str(s.get("reason") or ("success" if s.get("success") else "max_steps"))
                      for s in summaries)
    ok_steps = [s.get("steps") for s in summaries if s.get("success") is True]
    return {
        "episodes": n,
        "successes": successes,
        "success_rate": round(successes / n, 4) if n else 0.0,
        "mean_score": round(sum(_score(s) for s in summaries) / n, 4) if n else 0.0,
        "checks": check_stats(summaries),
        "objective": ({"minimize": objective, "value": objective_value(summaries, objective)}
                      if objective else None),
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
        **causes.evidence(summaries),
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
    """Higher is better: success rate, mean task-spec score, the objective (lower value
    first), then ran at all, fewer errors, collisions, steps."""
    def mean(name):
        value = (agg.get(name) or {}).get("mean")
        return float(value) if value is not None else 0.0

    ran = 1 if agg.get("episodes") else 0
    objective = agg.get("objective") or {}
    value = objective.get("value")
    return (float(agg.get("success_rate") or 0.0), float(agg.get("mean_score") or 0.0),
            -float(value) if value is not None else 0.0, ran,
            -float(agg.get("error_rate") or 0.0), -mean("collisions_total"), -mean("steps"))


# --- diagnosis ------------------------------------------------------------------------------

def diagnose(error_text: str) -> tuple[str, str] | None:
    """(cause, fix) for an error text such as ``"TypeError: ..."``; None when unknown.

    The table, most specific first, is ``bgen.orchestrator.causes.CAUSES``.
    """
    found = causes.diagnose(error_text)
    return None if found is None else (found.cause, found.fix)


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


#: What the runner's notes say when an episode's records outgrew their cap
#: (``worker._read_messages``) or took the trusted replay past its budget (``replay``).
RECORD_CAP = "the worker sent more than"
REPLAY_OVERRUN = "the replay passed its budget"


def _notes(summaries: list[dict], reason: str) -> list[str]:
    """The notes (``reasons``) of the episodes that ended with ``reason``."""
    return [str(s.get("reasons") or "") for s in summaries if s.get("reason") == reason]


def _ended_by_their_records(summaries: list[dict], n: int) -> list[str]:
    """Episodes stopped for what the policy made them record: more bytes than the cap, or
    commands heavier than any episode could give in its time. Both are the policy's doing."""
    found = []
    capped = [note for note in _notes(summaries, "crashed") if RECORD_CAP in note]
    if capped:
        found.append(f"{len(capped)}/{n} episodes were stopped for recording too much "
                     f"({capped[0][:200]}): every step records the commands given in it and the "
                     "notes collect() returns. Give one intent when the action ends, not many "
                     "a step, and return a few short notes.")
    heavy = [note for note in _notes(summaries, "tampered") if REPLAY_OVERRUN in note]
    if heavy:
        found.append(f"{len(heavy)}/{n} episodes' commands took the trusted replay longer than "
                     f"their own episode allows ({heavy[0][:200]}), so they were graded "
                     "tampered: give one intent when the action ends, not many long ones a step.")
    return found


def findings(agg: dict, summaries: list[dict], policy_code: str | None = None,
             task_spec: dict | None = None, flights: dict | None = None) -> list[str]:
    """Concrete problems, most important first, each a short paragraph.

    With a ``task_spec`` an episode out of steps is described by its failing checks (the
    critique leads with them), not as a target missed. ``flights`` maps a failed episode's
    seed to its ``flight_analysis.FlightFinding`` list.
    """
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
    found.extend(_ended_by_their_records(summaries, n))
    if reasons.get("tampered"):
        notes = [s for s in _notes(summaries, "tampered") if REPLAY_OVERRUN not in s]
        if notes:
            found.append(f"{len(notes)}/{n} episodes were tampered: the reported flight did not "
                         f"match the replay of the agent's commands ({notes[0][:300]}); move the "
                         "agent only by returning intents from act().")
    for reason, text in (("crashed", "the worker process died"),
                         ("sim_error", "the simulator failed outside the policy")):
        notes = [s for s in _notes(summaries, reason) if RECORD_CAP not in s]
        if notes:
            found.append(f"{len(notes)}/{n} episodes ended with {reason}: {text} "
                         f"({notes[0][:300]}); this is usually not the policy's fault, but avoid "
                         "extreme targets.")
    stuck = [s for s in summaries if s.get("reason") == "max_steps"
             and isinstance(s.get("path_len_est"), (int, float)) and s["path_len_est"] < STUCK_PATH_M]
    if stuck:
        found.append(f"{len(stuck)}/{n} episodes never moved (flew < {STUCK_PATH_M:g} m in "
                     f"{stuck[0].get('steps')} steps): act() returned None every step, the planner "
                     "failed every call, or a new intent replaced the old one each step before it "
                     "could fly. Plan only when agent.get_action_py() is None (it is None while "
                     "holding) and return the intent.")
    evidence = causes.evidence_findings(agg)
    found.extend(evidence)
    if agg["rejected_intents"] and not agg.get("rejections"):
        found.append(f"{agg['rejected_intents']} intents returned by act() were rejected by the "
                     "agent: return a valid ActionIntent with a non-empty move list.")
    flown = flight_findings(summaries, flights or {}, about_target=involves_target(task_spec))
    found.extend(flown)
    collisions = agg["collisions_total"]
    if collisions["mean"]:
        worst = max(summaries, key=lambda s: s.get("collisions_total") or 0)
        spike = (f"; seed {worst.get('seed')} alone had {worst.get('collisions_total')}"
                 if (worst.get("collisions_total") or 0) >= COLLISION_SPIKE else "")
        found.append(f"Collisions: {collisions['mean']:g} contacts per episode on average "
                     f"(max {collisions['max']:g}){spike}. Plan with padding 1-2, fly higher (more "
                     "negative z) over terrain, and replan when collisions start.")
    missed = [s for s in summaries if s.get("reason") == "max_steps" and s not in stuck]
    if missed and task_spec is not None:
        found.append(f"{len(missed)}/{n} episodes ran out of steps before every check held: "
                     "fix the failing checks listed at the top, in that order, and make the "
                     "whole route fit in the step budget.")
    elif missed:
        closest = min((s for s in missed if s.get("min_distance_to_target") is not None),
                      key=lambda s: s["min_distance_to_target"], default=None)
        if closest is not None:
            found.append(
                f"{len(missed)}/{n} episodes ran out of steps without reaching the target "
                f"(success needs < 1.0 m). Closest approach {closest['min_distance_to_target']:.1f} m "
                f"(seed {closest.get('seed')}), final distance "
                f"{_fmt(closest.get('final_distance_to_target'))} m."
                + ("" if (evidence or agg["errors"] or any((flights or {}).values())) else
                   " Plan straight to the target coordinate itself and replan from "
                   "agent.get_coord_py() when idle.")
                + causes.speed_hint(agg))
        else:
            found.append(f"{len(missed)}/{n} episodes ran out of steps without succeeding.")
    if not found and agg["success_rate"] >= 1.0:
        found.append(f"All {n} episodes succeeded (mean {_fmt(agg['steps']['mean'])} steps, "
                     f"{_fmt(collisions['mean'])} collisions). Keep the approach; change it only to "
                     "remove collisions or shorten the flight without adding risk.")
    return found


FLIGHT_SEEDS_SHOWN = 3


def involves_target(task_spec: dict | None) -> bool:
    """Whether the task is judged by the target at all: the default task (no spec) is reaching
    it; a spec is when one of its checks names the landmark ``target``. Progress toward the
    target says nothing about a task that never mentions it."""
    if task_spec is None:
        return True

    def names_target(value) -> bool:
        if value == "target":
            return True
        if isinstance(value, dict):
            return value.get("from") == "target"
        if isinstance(value, list):
            return any(names_target(item) for item in value)
        return False

    return any(names_target(check.get(field)) for check in task_spec.get("checks") or []
               if isinstance(check, dict) for field in ("point", "points", "centre"))


def flight_findings(summaries: list[dict], flights: dict, about_target: bool = True) -> list[str]:
    """One paragraph per failed episode (at most ``FLIGHT_SEEDS_SHOWN``): the policy's own
    summary line next to what bgen recognised in its flight, each pattern's cause and fix
    given once. ``about_target`` False (a task that never names the target): no closest
    approach to it, and no finding of progress toward it."""
    paragraphs, explained = [], set()
    if not about_target:
        flights = {seed: [f for f in found if f.kind != "no_progress"]
                   for seed, found in flights.items()}
    failed = [s for s in summaries if s.get("success") is not True
              and (flights.get(s.get("seed")) or _own_summary(s))]
    for summary in failed[:FLIGHT_SEEDS_SHOWN]:
        seed = summary.get("seed")
        closest = summary.get("min_distance_to_target")
        lines = [f"Seed {seed} failed ({summary.get('reason')}"
                 + (f", closest {closest:.1f} m to the target"
                    if about_target and isinstance(closest, (int, float)) else "")
                 + ")."]
        own = _own_summary(summary)
        if own:
            lines.append(f"   The policy's own summary: \"{own}\"")
        for finding in flights.get(seed) or []:
            lines.append(f"   bgen found: {finding.text}.")
            row = causes.FLIGHT_CAUSES.get(finding.kind)
            if row is not None and finding.kind not in explained:
                explained.add(finding.kind)
                lines.append(f"   Cause: {row.cause}.")
                lines.append(f"   Fix: {row.fix}.")
        if len(lines) > 1:
            paragraphs.append("\n".join(lines))
    return paragraphs


def _own_summary(summary: dict) -> str:
    own = summary.get("policy_summary")
    text = own.get("summary") if isinstance(own, dict) else None
    return text.strip()[:300] if isinstance(text, str) and text.strip() else ""


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


MISSED_CHECK_LINES = 16       # failing-check accounts shown at the head of a critique


def missed_checks(summaries: list[dict], limit: int = MISSED_CHECK_LINES) -> list[str]:
    """"seed N: <account>" for each failing check of each failed episode, episodes in seed
    order; at most ``limit`` lines, then a line saying how many more."""
    lines = []
    for summary in summaries:
        if summary.get("success") is True or not isinstance(summary.get("checks"), list):
            continue
        for check in summary["checks"]:
            if isinstance(check, dict) and check.get("passed") is False:
                lines.append(f"seed {summary.get('seed')}: {check.get('account')}")
    if len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more failing checks"]
    return lines


def critique(agg: dict, summaries: list[dict], *, policy_code: str | None = None,
             trace=None, trace_seed=None, max_chars: int = CRITIQUE_MAX_CHARS,
             task_spec: dict | None = None, flights: dict | None = None) -> str:
    """The feedback text for the next iteration (bounded by ``max_chars``).

    With a ``task_spec`` (its ``to_dict()``) the text leads with the account of each failing
    check of each failed episode and per-check pass rates; without one it speaks of reaching
    the target, as the default spec is exactly that. ``flights``: seed -> ``FlightFinding``
    list of failed episodes (``read_flights``).
    """
    n = agg["episodes"]
    if agg.get("load_error"):
        err = agg["load_error"]
        return cap(load_error_critique(err.get("message", ""), err.get("lineno"), policy_code), max_chars)
    if n == 0:
        return "No episode ran."
    ends = ", ".join(f"{k} {v}" for k, v in agg["reasons"].items())
    if task_spec is None:
        result = (f"Result: {agg['successes']}/{n} episodes reached the target "
                  f"(success rate {agg['success_rate']:.2f}). Episode ends: {ends}.")
    else:
        result = (f"Result: {agg['successes']}/{n} episodes met every check of the task "
                  f"(success rate {agg['success_rate']:.2f}, mean score "
                  f"{taskspec.score_text(agg.get('mean_score') or 0.0, agg['successes'] == n)}). "
                  f"Episode ends: {ends}.")
    head = [result]
    if task_spec is not None:
        missed = missed_checks(summaries)
        if missed:
            head.append("What the failed episodes missed (checked by bgen from the flight):")
            head.extend(f"- {line}" for line in missed)
        head.append("Checks: " + "; ".join(
            f"{c['index']}. {c['kind']} passed {c['passed']}/{c['episodes']} (mean score "
            f"{taskspec.score_text(c['mean_score'], c['passed'] == c['episodes'])})"
            for c in agg.get("checks") or []) + ".")
        objective = agg.get("objective") or {}
        if objective.get("value") is not None:
            unit = {"time": " s", "path_length": " m"}.get(objective["minimize"], "")
            head.append(f"Objective: minimize {objective['minimize']}; mean "
                        f"{objective['value']:g}{unit} over these episodes.")
    head += [
        f"Steps mean {_fmt(agg['steps']['mean'])} (min {_fmt(agg['steps']['min'], 0)}, max "
        f"{_fmt(agg['steps']['max'], 0)}); collisions mean {_fmt(agg['collisions_total']['mean'])}; "
        f"path length mean {_metres(agg['path_len_est']['mean'])}"
        + (f"; closest approach to the target mean {_metres(agg['min_distance_to_target']['mean'])}"
           if involves_target(task_spec) else "") + ".",
    ]
    problems = findings(agg, summaries, policy_code, task_spec=task_spec, flights=flights)
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
                         f"last steps (agent_coord: the position rounded to whole cells; "
                         f"command_len: the number of moves of the intent being flown, all of "
                         f"them, not those left, 0 with no action; policy_log: what collect() "
                         f"returned, {{}} once an episode's notes passed "
                         f"{MAX_EPISODE_NOTE_CHARS:,} characters):\n{sampled}")
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
                 max_chars: int = CRITIQUE_MAX_CHARS,
                 task_spec: dict | None = None) -> tuple[dict, str]:
    """(aggregate, critique) for one evaluated policy directory; ``task_spec`` as given to
    the episodes (None: the default, reach the target)."""
    root = Path(root)
    summaries = read_summaries(root) if summaries is None else summaries
    objective = (task_spec or {}).get("objective") or {}
    agg = aggregate(summaries, objective.get("minimize"))
    flights = read_flights(root, summaries)
    agg["flight_findings"] = flight_record(flights)
    seed, trace = first_failed_trace(root, summaries)
    return agg, critique(agg, summaries, policy_code=policy_code, trace=trace, trace_seed=seed,
                         max_chars=max_chars, task_spec=task_spec, flights=flights)


def read_steps(path: Path) -> list[dict]:
    """The step records of ``steps.<seed>.jsonl`` (unreadable lines skipped; [] if missing)."""
    steps = []
    try:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    steps.append(record)
    except OSError:
        return []
    return steps


def read_flights(root: Path, summaries: list[dict]) -> dict:
    """seed -> ``flight_analysis.analyse_episode`` findings of every failed episode under root."""
    flights = {}
    for summary in summaries:
        if summary.get("success") is True:
            continue
        seed = summary.get("seed")
        steps = read_steps(Path(root) / f"ep_{seed}" / f"steps.{seed}.jsonl")
        delta = (summary["sim_time_s"] / summary["steps"]
                 if summary.get("steps") and summary.get("sim_time_s") else 0.01)
        found = flight_analysis.analyse_episode(summary, steps, delta)
        if found:
            flights[seed] = found
    return flights


def flight_record(flights: dict) -> list[dict]:
    """``aggregate.json``'s ``flight_findings``: one {seed, kind, evidence} per finding."""
    return [{"seed": seed, "kind": f.kind, "evidence": f.evidence}
            for seed, found in flights.items() for f in found]


def write_evaluation(root: Path, agg: dict, text: str) -> None:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "aggregate.json").write_text(json.dumps(agg, indent=2), encoding="utf-8")
    (root / "critique.txt").write_text(text + "\n", encoding="utf-8")
