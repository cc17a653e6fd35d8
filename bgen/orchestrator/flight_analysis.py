"""Stuck and looping flights, recognised from an episode's step records.

``analyse(steps, start, target, ...)`` reads the records of one episode (the dicts of
``steps.<seed>.jsonl``: ``step``, ``t``, ``agent_pos`` [x, y, z] m, ``agent_coord`` [x, y, z]
voxels, ``distance_to_target`` m; z down, so a more negative z is higher) and returns one
``FlightFinding`` per pattern it sees, each with the steps and positions that show it:

    no_progress     the closest approach to the target did not improve by ``PROGRESS_M`` in
                    the last ``NO_PROGRESS_S`` seconds of the episode (or more)
    oscillation     the agent went back and forth: it re-entered one cell ``OSCILLATION_VISITS``
                    times or more after leaving it, alternating between a few cells
    swinging_action the same back and forth under one action the policy never replaced
                    (``command_len`` unchanged, no command given): the action did not advance
    climb           it rose ``CLIMB_M`` or more above both the start and the target
    plan_failures   ``helpers.plan_to`` failed ``REPEATED_PLAN_FAILURES`` times or more
                    (from the episode summary: counts by message and the steps they happened on)
    stalled_action  the episode ended with the agent hovering under an action that never
                    ended: for the last ``STALL_S`` seconds or more the same ``command_len``
                    (> 0) was set and the agent stayed within ``STALL_M`` of one point (an
                    action advances only while the drone is within 1 m of its path,
                    voxelsim's chaser; a drone that settles farther stays there)
    idle_end        the episode ended with no action set for the last ``IDLE_S`` seconds or
                    more (``command_len`` 0): the drone stayed where its last action ended
                    (up to 0.9 m from that action's end cell; with no action it does not
                    move) and the policy planned nothing more

Successful episodes are not analysed (``analyse_episode`` returns nothing for them). Pure:
no I/O.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

NO_PROGRESS_S = 20.0          # seconds without getting PROGRESS_M closer (at the episode's end)
PROGRESS_M = 1.0
OSCILLATION_VISITS = 4        # separate entries into the same cell
OSCILLATION_MIN_S = 5.0       # spread over at least this much simulated time
CLIMB_M = 15.0                # metres above both the start and the target
REPEATED_PLAN_FAILURES = 10
STALL_S = 5.0                 # seconds hovering under the same unfinished action (at the end)
STALL_M = 0.1                 # how far the agent may drift meanwhile
IDLE_S = 5.0                  # seconds with no action at all (at the end)


@dataclass(frozen=True)
class FlightFinding:
    """One recognised pattern: ``kind`` (see the module table), a sentence with the evidence,
    and ``evidence`` (JSON-ready: steps, positions, counts)."""

    kind: str
    text: str
    evidence: dict = field(default_factory=dict)


def _point(values) -> str:
    return "[" + ", ".join(f"{float(v):.1f}" if isinstance(v, float) else str(v) for v in values) + "]"


def _step_of(record: dict, index: int) -> int:
    step = record.get("step")
    return step if isinstance(step, int) else index


def _time_of(record: dict, index: int, delta: float) -> float:
    t = record.get("t")
    return float(t) if isinstance(t, (int, float)) else index * delta


def no_progress(steps: list[dict], delta: float = 0.01) -> FlightFinding | None:
    """The tail of the episode in which the agent never came ``PROGRESS_M`` closer."""
    best = None
    best_index = None
    for index, record in enumerate(steps):
        dist = record.get("distance_to_target")
        if not isinstance(dist, (int, float)):
            continue
        if best is None or dist < best - PROGRESS_M:
            best, best_index = float(dist), index
    if best_index is None:
        return None
    last = len(steps) - 1
    span = _time_of(steps[last], last, delta) - _time_of(steps[best_index], best_index, delta)
    if span < NO_PROGRESS_S:
        return None
    since, end = steps[best_index], steps[last]
    travelled = sum(
        sum((float(a) - float(b)) ** 2 for a, b in zip(steps[i]["agent_pos"], steps[i - 1]["agent_pos"])) ** 0.5
        for i in range(best_index + 1, last + 1)
        if steps[i].get("agent_pos") and steps[i - 1].get("agent_pos"))
    evidence = {"from_step": _step_of(since, best_index), "to_step": _step_of(end, last),
                "seconds": round(span, 2), "closest_m": round(best, 2),
                "from_pos": since.get("agent_pos"), "to_pos": end.get("agent_pos"),
                "flown_m": round(travelled, 1)}
    how = (f"it flew {travelled:.1f} m without getting closer" if travelled >= 2.0
           else "it hardly moved")
    return FlightFinding("no_progress", (
        f"no progress toward the target for the last {span:.0f} s: from step "
        f"{evidence['from_step']} (at {_point(since.get('agent_pos') or [])}, {best:.1f} m away) "
        f"to step {evidence['to_step']} (at {_point(end.get('agent_pos') or [])}) {how}"), evidence)


def oscillation(steps: list[dict], delta: float = 0.01) -> FlightFinding | None:
    """The cell re-entered most often, when it was re-entered ``OSCILLATION_VISITS`` times."""
    entries: list[tuple[tuple, int, float]] = []      # (cell, step, t) each time the cell changes
    previous = None
    for index, record in enumerate(steps):
        coord = record.get("agent_coord")
        if not isinstance(coord, (list, tuple)) or len(coord) != 3:
            continue
        cell = tuple(int(v) for v in coord)
        if cell != previous:
            entries.append((cell, _step_of(record, index), _time_of(record, index, delta)))
            previous = cell
    if len(entries) < OSCILLATION_VISITS + 1:
        return None
    visits = Counter(cell for cell, _, _ in entries[1:])
    cell, count = visits.most_common(1)[0]
    if count < OSCILLATION_VISITS:
        return None
    times = [(step, t) for c, step, t in entries[1:] if c == cell]
    if times[-1][1] - times[0][1] < OSCILLATION_MIN_S:
        return None
    first, last = times[0][0], times[-1][0]
    around = Counter(c for c, step, _ in entries if first <= step <= last and c != cell)
    partners = [list(c) for c, _ in around.most_common(3)]
    evidence = {"cell": list(cell), "entries": count, "first_step": first, "last_step": last,
                "other_cells": partners, "distinct_cells": len(around) + 1}
    length = _one_action(steps, first, last)
    if length is not None:
        evidence["command_len"] = length
        return FlightFinding("swinging_action", (
            f"the action did not advance: between steps {first} and {last} the drone entered "
            f"cell {list(cell)} {count} times, moving among {len(around) + 1} cells, under one "
            f"action of {length} moves that the policy never replaced and that did not end"),
            evidence)
    return FlightFinding("oscillation", (
        f"back and forth: the agent entered cell {list(cell)} {count} times between steps "
        f"{first} and {last}, moving among {len(around) + 1} cells (most often "
        f"{', '.join(str(p) for p in partners)})"), evidence)


def _one_action(steps: list[dict], first: int, last: int) -> int | None:
    """The ``command_len`` (> 0) of the one action set from step ``first`` to ``last`` when no
    command was given in between, else None."""
    lengths, spanned = set(), False
    for index, record in enumerate(steps):
        step = _step_of(record, index)
        if first <= step <= last:
            spanned = True
            if record.get("commands") and step > first:
                return None
            lengths.add(record.get("command_len"))
    if not spanned or len(lengths) != 1:
        return None
    (length,) = lengths
    return length if isinstance(length, int) and length > 0 else None


def climb(steps: list[dict], start, target) -> FlightFinding | None:
    """The highest point, when it is ``CLIMB_M`` above both the start and the target."""
    if start is None or target is None:
        return None
    highest_index, highest_z = None, None
    for index, record in enumerate(steps):
        pos = record.get("agent_pos")
        if isinstance(pos, (list, tuple)) and len(pos) == 3 and (
                highest_z is None or float(pos[2]) < highest_z):
            highest_index, highest_z = index, float(pos[2])
    if highest_index is None:
        return None
    reference = min(float(start[2]), float(target[2]))     # the higher of the two (z down)
    rise = reference - highest_z
    if rise < CLIMB_M:
        return None
    record, last = steps[highest_index], steps[-1]
    evidence = {"step": _step_of(record, highest_index), "pos": record.get("agent_pos"),
                "above_m": round(rise, 1), "start": list(start), "target": list(target),
                "final_pos": last.get("agent_pos")}
    return FlightFinding("climb", (
        f"climbed without bound: at step {evidence['step']} it was at "
        f"{_point(record.get('agent_pos'))}, {rise:.0f} m above both the start "
        f"{list(start)} and the target {_point(target)} (z down: more negative is higher); "
        + ("it was still at its highest when the episode ended" if highest_index == len(steps) - 1
           else f"it ended at {_point(last.get('agent_pos') or [])}")), evidence)


def plan_failures(summary: dict, steps: list[dict]) -> FlightFinding | None:
    """``helpers.plan_to`` failing again and again, with the steps and positions it failed at."""
    failures = summary.get("planner_failures") if isinstance(summary, dict) else None
    if not isinstance(failures, dict):
        return None
    total = sum(v for v in failures.values() if isinstance(v, int))
    if total < REPEATED_PLAN_FAILURES:
        return None
    at = [s for s in summary.get("planner_failure_steps") or [] if isinstance(s, int)]
    by_step = {_step_of(r, i): r for i, r in enumerate(steps)}
    shown = [(s, by_step[s].get("agent_pos")) for s in (at[:1] + at[-1:]) if s in by_step]
    where = "; ".join(f"step {s} at {_point(p)}" for s, p in shown if p)
    messages = ", ".join(f"{count} x \"{message}\"" for message, count in
                         sorted(failures.items(), key=lambda item: -item[1]))
    evidence = {"count": total, "by_message": dict(failures), "steps": at}
    return FlightFinding("plan_failures", (
        f"helpers.plan_to failed {total} times ({messages})"
        + (f", e.g. {where}" if where else "")), evidence)


def stalled_action(steps: list[dict], delta: float = 0.01) -> FlightFinding | None:
    """The end of the episode spent hovering under one action that never ended."""
    if not steps:
        return None
    last = len(steps) - 1
    end = steps[last]
    length, anchor = end.get("command_len"), end.get("agent_pos")
    if not isinstance(length, int) or length <= 0 or not isinstance(anchor, (list, tuple)) \
            or len(anchor) != 3:
        return None
    first = last
    for index in range(last - 1, -1, -1):
        record = steps[index]
        pos = record.get("agent_pos")
        if record.get("command_len") != length or not isinstance(pos, (list, tuple)) or \
                sum((float(a) - float(b)) ** 2 for a, b in zip(pos, anchor)) > STALL_M ** 2:
            break
        first = index
    span = _time_of(end, last, delta) - _time_of(steps[first], first, delta)
    if span < STALL_S:
        return None
    evidence = {"from_step": _step_of(steps[first], first), "to_step": _step_of(end, last),
                "seconds": round(span, 2), "pos": list(anchor), "command_len": length}
    return FlightFinding("stalled_action", (
        f"the action stalled: from step {evidence['from_step']} to step {evidence['to_step']} "
        f"({span:.0f} s) the drone hovered within {STALL_M:g} m of {_point(anchor)} under an "
        f"action of {length} moves that never ended"), evidence)


def idle_end(steps: list[dict], delta: float = 0.01) -> FlightFinding | None:
    """The end of the episode spent with no action set (``command_len`` 0 to the last step)."""
    if not steps or steps[-1].get("command_len") != 0:
        return None
    last = len(steps) - 1
    first = last
    while first > 0 and steps[first - 1].get("command_len") == 0:
        first -= 1
    span = _time_of(steps[last], last, delta) - _time_of(steps[first], first, delta)
    if span < IDLE_S:
        return None
    pos = steps[last].get("agent_pos") or []
    evidence = {"from_step": _step_of(steps[first], first), "to_step": _step_of(steps[last], last),
                "seconds": round(span, 2), "pos": list(pos)}
    since = "from the start" if first == 0 else f"from step {evidence['from_step']}"
    return FlightFinding("idle_end", (
        f"no action was set for the last {span:.0f} s ({since} to step {evidence['to_step']}): "
        f"the drone stayed at {_point(pos)} and the policy planned nothing more"), evidence)


def analyse(steps: list[dict], start=None, target=None, *, summary: dict | None = None,
            delta: float = 0.01) -> list[FlightFinding]:
    """Every pattern found in one episode's step records, in the order of the module table.

    A stalled action or an idle end explains the end of the flight by itself: ``no_progress``
    over the same stretch is then left out."""
    stalled = stalled_action(steps, delta)
    idle = idle_end(steps, delta)
    found = [None if stalled or idle else no_progress(steps, delta), oscillation(steps, delta),
             climb(steps, start, target), plan_failures(summary or {}, steps), stalled, idle]
    return [f for f in found if f is not None]


#: Check kinds a flight can still meet by flying on (the rest are invariants: once broken,
#: nothing later mends them).
GOAL_KINDS = ("reach", "visit", "orbit", "dwell", "end_near", "time_limit")


def analyse_episode(summary: dict, steps: list[dict], delta: float = 0.01) -> list[FlightFinding]:
    """``analyse`` for a failed episode (start and target from its summary); [] on success.

    ``idle_end`` is left out when every check the episode failed is a broken invariant
    (standoff, clearance, altitude, collisions): planning more could not have passed it."""
    if summary.get("success") is True:
        return []
    found = analyse(steps, summary.get("start"), summary.get("target"), summary=summary,
                    delta=delta)
    failed = [c.get("kind") for c in summary.get("checks") or []
              if isinstance(c, dict) and not c.get("passed")]
    if failed and not any(kind in GOAL_KINDS for kind in failed):
        found = [f for f in found if f.kind != "idle_end"]
    return found
