"""The prompts: one system prompt, and user prompts for a fresh policy, a refinement and a repair.

Pure functions of their arguments: the loop passes the goal, target, start, scenario, the
context pack (bgen/llm/context), the previous critique and code, or the load error to repair.
What the model must always keep in mind (the contract and the pitfalls that make policies
fail) is in the system prompt; the task and the evidence are in the user prompt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bgen.llm.context import ContextPack, with_facts
from bgen.runner.taskspec import BUDGET_EXTRA_S, BUDGET_MARGIN, CRUISE_SPEED_MPS

SYSTEM_PROMPT = """\
You write drone behaviour policies for VoxelSim, a voxel-world quadrotor simulator.
A policy is one Python module. The runner loads it in a sandbox, calls its functions once per
simulation step for thousands of steps, and scores the flight.

Reply with exactly one fenced ```python block holding the complete module. No other code
blocks; keep any prose outside the block to one or two sentences.

The contract:
- init(config) -> None, optional. Called once per episode before the first step.
  config["target"] is the goal position as a list of 3 numbers; more keys may be present.
- act(t, agent, world, fw, env, helpers) -> ActionIntent | (ActionIntent, "Replace" | "Push") | None.
  Called every step (t is simulated seconds, {{delta_s}} s per step). Returning an intent replaces the
  current action ("Replace", the default) or queues it behind ("Push"); None keeps flying.
- collect(step_ctx) -> dict of str to str: a few short notes for this step's log.
- finalize(ep_ctx) -> dict of str to str: a "summary" key describing the episode.
helpers.plan_to(world, origin, dst, urgency, yaw, padding=0) returns an A* ActionIntent;
helpers.intent(urgency, yaw, moves) builds one from a list of vxs.MoveDir values.

Rules that decide whether the policy works:
1. Voxel coordinates are integers. Passing a float (even 3.0) where voxelsim expects a coordinate
   raises TypeError "'float' object cannot be interpreted as an integer". Convert with
   int(round(v)); agent.get_coord_py() gives the agent's integer cell, agent.get_pos() floats.
2. Urgency must be > 0 (0.6 to 0.9 is sensible; at 1.0 and above a drone on a zig-zag path can
   settle off it and stall, see the cheatsheet). Zero or negative urgency is a Rust panic that
   `except Exception` does not catch; the episode dies.
3. A function that assigns a module-level variable needs `global NAME` first, or Python raises
   UnboundLocalError.
4. The A* planner raises an Exception when there is no path (origin equals destination, origin
   or destination inside terrain, walled in). Always wrap plan_to in try/except Exception and
   have a fallback.
5. z points down: a more negative z is higher. Terrain is below the start; fly above it.
6. agent.get_action_py() is None while the agent has no action to fly. Plan a new intent only
   then (or when you must change course); replacing the action every step keeps the drone
   from ever flying.
7. Success is every check of the task holding (the user prompt lists them; with none listed,
   being within 1.0 of the target); the episode ends as soon as they all hold. Compare
   positions by distance, never by equality. An action ends up to {{action_end_within_m}} m from its end
   cell (on any side of it) and the drone stops there: with no action it does not move. So
   plan to the point itself, and when a check needs the agent within r of a point, end the
   action on a cell at most r - {{action_end_within_m}} m from it; if the agent is not yet where a
   check needs it, plan again from agent.get_coord_py().
8. Every call of init, act, collect and finalize has a wall-clock budget ({{act_budget_s}} s by
   default); a call past it ends the episode as a timeout. No loops waiting for the simulator,
   no sleeping; keep per-step work small and plan only when needed.
9. Ordinary Python works (classes with __init__ and comparison methods, super(), @property,
   @staticmethod, @dataclass, with, "{:.2f}".format(x), _helper names). The loader refuses
   other __dunder__ names and _private attributes of objects that are not yours, bare
   `except:` (write `except Exception:`), open, eval, getattr, type, and imports other than
   voxelsim (as vxs), math, random, typing, collections, heapq, itertools, dataclasses,
   functools, time (clocks only) and numpy.
10. Keep yaw near 0 (within about 0.8 rad): a larger yaw makes the flight controller diverge and
   the drone climbs away without finishing its action.
11. world.collisions_py(pos, dims) never examines the cell that contains pos, only its 26
   neighbours, so it cannot tell whether a cell is free; and every extent in dims must be below
   {{collision_extent_limit}} or voxelsim panics (not an Exception; the episode dies). To test a cell, read
   world.dense_snapshot_py(cell, [0, 0, 0]).data_py()[0] (0 means empty).
12. One intent may not visit a cell twice or return to its first cell (Forward then Back): the
   agent refuses it ("Duplicate centroid") and keeps its previous action. Send the way back as
   a new intent.
13. Speed: the drone cruises at about {{cruise_mps_per_urgency}} m/s x urgency; a straight run of N cells takes
   about {{plan_start_steps}} + {{steps_per_cell}}*N/urgency steps ({{delta_s}} s each). Check that the route fits in
   the step budget given in the task.
Use only the API in the cheatsheet, with its exact names and argument order.
"""


@dataclass(frozen=True)
class Task:
    """What the policy must achieve, in the terms the prompt states it."""

    goal: str
    scenario: str = "terrain"
    target: tuple | None = None
    start: tuple | None = None
    max_steps: int | None = None
    delta: float = 0.01
    task_spec: dict | None = None         # the checks the flight is judged by (None: reach target)
    route_m: float | None = None          # when max_steps was derived from the spec's route
    episodes: tuple = ()      # (seed, start, target) each episode really flies, lifting included


@dataclass(frozen=True)
class Repair:
    """A module that failed to load and why."""

    code: str
    message: str
    lineno: int | None = None
    extraction_note: str | None = None   # which block of a reply with several became the code


#: The wind farm's terrain away from its towers (the same world for every seed): the highest
#: cell of any column farther than 3 m from an axis, and the median column top (z, m).
WIND_FARM_TERRAIN_TOP_Z = -46
WIND_FARM_GROUND_MEDIAN_Z = -16

SCENARIO_TEXT = {
    "terrain": ("Random terrain generated from the episode seed (hills, ground below the start); "
                "a different world each seed, so do not hard-code obstacles."),
    "wind_farm": ("A wind farm: three turbine towers (solid columns of the 1 m cells whose "
                  "centres lie within 2 m of the axis, so solid out to 2.5 m; axes at x, y = "
                  "(30, 30), (120, 120), (210, 210), from the ground up to z = -125) on hilly "
                  f"terrain (ground and trees reach at most z = {WIND_FARM_TERRAIN_TOP_Z} away "
                  f"from the towers; half the ground columns top out at z = "
                  f"{WIND_FARM_GROUND_MEDIAN_Z} or lower); the middle one has a defect on its +x "
                  "face at half height. Fly around the towers, never through them."),
}


def build_system_prompt() -> str:
    """The system prompt, every ``{{fact}}`` filled in from ``bgen.llm.context.FACTS``."""
    return with_facts(SYSTEM_PROMPT)


def _fmt_point(point) -> str:
    return "[" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in point) + "]"


def task_section(task: Task) -> str:
    lines = [f"GOAL\n{task.goal.strip()}", ""]
    lines.append(f"SCENARIO: {task.scenario}. {SCENARIO_TEXT.get(task.scenario, '')}".rstrip())
    lines.extend(episodes_lines(task))
    if task.max_steps is not None:
        budget = (f"Each episode lasts at most {task.max_steps} steps "
                  f"({task.max_steps * task.delta:g} s of simulated time)")
        if task.route_m is not None:
            budget += (f", a budget derived from the route the checks ask for (about "
                       f"{task.route_m:.0f} m: straight lines between their points, each orbit's "
                       f"circle at its mid radius; flown at about {CRUISE_SPEED_MPS:g} m/s with "
                       f"urgency 0.9, times {BUDGET_MARGIN:g}, plus {BUDGET_EXTRA_S:g} s; an A* "
                       f"staircase on a diagonal flies close to the straight line, as the drone "
                       f"cuts its corners, but legs along one axis at a time are up to 1.4 times "
                       f"longer, 1.7 in 3-D)")
        lines.append(budget + ".")
    if task.task_spec is not None:
        lines += ["", task_spec_section(task.task_spec)]
    return "\n".join(lines)


def task_spec_section(spec: dict) -> str:
    """The checks the flight is judged by, as the policy prompt states them."""
    text = ["SUCCESS CHECKS (bgen measures them from the flight; collect() and finalize() "
            "cannot change them)",
            json.dumps({k: v for k, v in spec.items() if k != "goal"}),
            "The episode succeeds, and ends at once, at the first step at which every check "
            "holds; otherwise it runs to the step budget. Points named 'start' and 'target' are "
            "config['start'] and config['target'], as lifted above terrain (config['start'] is "
            "the cell the agent starts in); every point a check names is "
            "config['landmarks'][name]. What each kind means (the values are the spec's "
            "above; a field it leaves out takes the default):"]
    kinds = []
    for check in spec.get("checks", []):
        if check.get("kind") not in kinds:
            kinds.append(check.get("kind"))
    text += [f"- {kind}: {CHECK_MEANINGS[kind]}" for kind in kinds if kind in CHECK_MEANINGS]
    objective = (spec.get("objective") or {}).get("minimize")
    if objective:
        text.append(f"Among policies that pass, lower {objective} is better: optimise it once "
                    "every check holds.")
    return "\n".join(text)


#: One line per check kind: its exact semantics (docs/taskspec.md says the same at length).
CHECK_MEANINGS = {
    "reach": "passes for good once the agent comes within radius (default 1.0 m) of point",
    "visit": "passes for good once the agent has come within radius (default 1.5 m) of every "
             "point, in list order when ordered (default true), the list repeated laps "
             "(default 1) times",
    "orbit": "passes for good once the net horizontal angle swept around centre, in either "
             "direction (turning back subtracts), reaches degrees (default 360); only steps "
             "whose horizontal distance is within [min_radius, max_radius] count (distance to "
             "the centre point: for a turbine, its axis), and re-entering the band adds no jump",
    "dwell": "passes for good once the agent has stayed within radius (default 1.5 m) of point "
             "for seconds of simulated time on end (leaving the radius starts the count again)",
    "end_near": "holds while the agent is within radius (default 1.5 m) of point; judged when "
                "the episode ends",
    "clearance": "take-off is exempt: from the first step at which the agent is min_m above "
                 "the top of the highest solid cell below it, it must stay at least that high at "
                 "every step; it fails if the agent is never that high",
    "standoff": "take-off is exempt: from the first step at which the agent is min_m from "
                "every cell of the world (3-D distance to the nearest cell of any kind: ground, "
                "trunks, foliage, turbines, measured to the cell's 1 m cube, not its centre; in "
                "or under the ground it is 0), it must stay at least that far at every step; it "
                "fails if the agent is never that far",
    "altitude": "z stays within [min_z, max_z] at every step (z down: min_z is the highest)",
    "collisions": "the episode's collision count stays at most max (default 0)",
    "time_limit": "every other check holds within seconds of simulated time",
}


# --- turning a goal into a task spec ------------------------------------------------------------

TASK_SPEC_SYSTEM_PROMPT = """You turn a user's goal for a drone flight into a task spec: a JSON document of checks that bgen
measures from the recorded flight to decide whether the goal was achieved.
Reply with exactly one fenced ```json block holding the spec, nothing else of substance.

Shape: {"goal": "<the goal>", "checks": [<check>, ...],
        "objective": {"minimize": "time" | "path_length" | "collisions"}}   (objective optional)
A point is [x, y, z] (metres; z points down, so a more negative z is higher), a landmark name,
or {"from": "<landmark>", "offset": [dx, dy, dz]}. No point can be placed relative to the
ground below it: a height above the ground can be asked only of the whole flight (clearance).
Check kinds (fields, defaults in brackets):
- reach: point, radius [1.0]. The agent comes within radius of point at some step.
- visit: points, radius [1.5], ordered [true], laps [1]. It passes within radius of every point,
  in order if ordered, the list repeated laps times.
- orbit: centre, min_radius, max_radius, degrees [360]. The net horizontal angle it sweeps
  around centre, in either direction, while its horizontal distance to centre (a turbine's
  axis) is within the band reaches degrees (once reached, it stays passed).
- dwell: point, seconds, radius [1.5]. It stays within radius of point for seconds on end at
  some time ("hover at X for 5 s"; once done it stays passed).
- end_near: point, radius [1.5]. It is within radius of point when the episode ends.
- clearance: min_m. Take-off is exempt: from the first step at which the agent is min_m above
  the highest solid cell below it, it stays at least that high; it fails if it is never that
  high. Height only: a tree beside the drone does not count.
- standoff: min_m (at most 20). Take-off is exempt: from the first step at which the agent is
  min_m from every cell of the world in any direction (ground, trees with their foliage,
  turbines), it stays at least that far; it fails if it is never that far: "keep N m away
  from obstacles".
- altitude: min_z and/or max_z. z stays in the band at every step (min_z is the highest).
- collisions: max [0]. At most max collisions in the episode.
- time_limit: seconds. Every other check holds within that many seconds.
The episode ends at the first step at which every check holds, so a goal that ends somewhere
needs reach or end_near, and a goal that waits somewhere needs dwell; invariants (clearance, standoff, altitude, collisions) alone end at
once.
Checks are judged together, not one after another: only a visit's points have an order, so
"do A, then B" is a visit of A's and B's points, or A's checks plus an end_near at B.
State only what the goal asks for; prefer landmarks to raw coordinates so the spec fits every
episode. Use an objective only when the goal asks to do something as fast, short or safe as
possible.
"""

TASK_SPEC_EXAMPLE = {
    "goal": "Patrol a square of side 10 around the start twice, then land at the target "
            "without touching anything.",
    "checks": [
        {"kind": "visit", "laps": 2, "points": [
            {"from": "start", "offset": [5, -5, 0]}, {"from": "start", "offset": [5, 5, 0]},
            {"from": "start", "offset": [-5, 5, 0]}, {"from": "start", "offset": [-5, -5, 0]}]},
        {"kind": "end_near", "point": "target", "radius": 1.0},
        {"kind": "collisions", "max": 0}],
}


def build_task_spec_prompt(goal: str, scenario: str, landmarks: dict,
                           episodes: tuple = ()) -> str:
    """Ask for the task spec of ``goal``; ``landmarks`` maps names to nominal (x, y, z),
    ``episodes`` holds (seed, start, target) as the run's first episodes really fly them."""
    marks = "\n".join(f"- {name}: {_fmt_point([round(float(v), 2) for v in point])}"
                       for name, point in landmarks.items())
    varies = SEED_VARIATION.get(scenario, "The seed may change the world, start and target.")
    flown = "".join(f"\n  seed {seed}: start {_fmt_point(start)}, target {_fmt_point(target)}"
                    for seed, start, target in episodes)
    return "\n\n".join([
        f"GOAL\n{goal.strip()}",
        f"SCENARIO: {scenario}. {SCENARIO_TEXT.get(scenario, '')}".rstrip(),
        "LANDMARKS (names usable as points, at their nominal coordinates; 'start' is where the "
        "drone takes off, 'target' the scenario's goal point)\n"
        f"{marks}\n{varies} The names follow each episode's points, and an offset is from the "
        "landmark, not from the ground"
        + (f"; this run's episodes:{flown}" if flown else "."),
        "WORKED EXAMPLE\n```json\n" + json.dumps(TASK_SPEC_EXAMPLE, indent=1) + "\n```",
        "Write the task spec for the GOAL above.",
    ])


def build_task_spec_repair_prompt(goal: str, scenario: str, landmarks: dict, reply: str,
                                  error: str, episodes: tuple = ()) -> str:
    """Ask once more after a spec failed validation."""
    return "\n\n".join([
        build_task_spec_prompt(goal, scenario, landmarks, episodes),
        f"YOUR PREVIOUS REPLY\n{reply.strip()[:4000]}",
        f"IT IS NOT A VALID TASK SPEC\n{error}",
        "Return the corrected task spec as one fenced ```json block.",
    ])


SEED_VARIATION = {
    "terrain": "Starts and targets differ per seed: each seed is another terrain, and a start or "
               "target inside it is lifted straight up above the ground or trees of that seed.",
    "wind_farm": "Starts differ per seed: the world and the target are the same for every seed, "
                 "but the start moves around the middle tower (another side and height each time).",
}


def episodes_lines(task: Task) -> list[str]:
    """Where the episodes start and aim: per seed when known, else the nominal points, and
    always how to read them at run time."""
    ends = ("An episode succeeds (and ends) when the agent is within 1.0 of its target."
            if task.task_spec is None else
            "An episode succeeds (and ends) when every SUCCESS CHECK below holds.")
    how = ("Read them at run time, never hard-code them: init(config) receives config['start'] "
           "and config['target'] (lists of 3 ints for whole-number cells), and "
           "agent.get_coord_py() is the start cell at t = 0. " + ends)
    varies = SEED_VARIATION.get(task.scenario, "The seed may change the world, start and target.")
    if task.episodes:
        rows = [f"  seed {seed}: start {_fmt_point(start)}, target {_fmt_point(target)}"
                for seed, start, target in task.episodes]
        return [f"{varies} The episodes of this evaluation (other seeds vary the same way):",
                *rows, how]
    lines = [varies]
    if task.start is not None:
        lines.append(f"The nominal start is voxel {_fmt_point(task.start)}.")
    if task.target is not None:
        lines.append(f"The nominal target is {_fmt_point(task.target)}.")
    return lines + [how]


def context_section(pack: ContextPack, *, with_examples: bool = True) -> str:
    parts = [f"API CHEATSHEET\n{pack.cheatsheet.strip()}",
             f"POLICY TEMPLATE (the contract; adapt the logic)\n```python\n{pack.template.strip()}\n```"]
    if with_examples and pack.examples:
        shown = "\n\n".join(f"# --- example: {name}.py ---\n```python\n{source.strip()}\n```"
                            for name, source in pack.examples.items())
        parts.append("EXAMPLE POLICIES (working patterns; do not copy targets or waypoints from "
                     f"them)\n{shown}")
    return "\n\n".join(parts)


def _quoted_line(code: str, lineno: int | None) -> str:
    lines = code.splitlines()
    if lineno and 1 <= lineno <= len(lines):
        return f"\nline {lineno}: {lines[lineno - 1].strip()}"
    return ""


def build_user_prompt(task: Task, pack: ContextPack, *, critique: str | None = None,
                      existing_code: str | None = None) -> str:
    """A fresh policy (no critique, no code) or a refinement of ``existing_code``."""
    parts = [task_section(task), context_section(pack)]
    if existing_code:
        parts.append("CURRENT POLICY (line numbers match the critique; refine it rather than "
                     f"starting over unless its approach cannot work)\n```python\n{existing_code.rstrip()}\n```")
    if critique:
        parts.append(f"CRITIQUE OF THE LAST EVALUATION\n{critique.strip()}")
    if existing_code or critique:
        order = ("success rate, then collisions, then steps" if task.task_spec is None else
                 "success rate, then the mean score of the checks, then the objective if any, "
                 "then collisions, then steps")
        parts.append("Fix the problems the critique names first, then improve the score "
                     f"({order}). Return the complete module.")
    else:
        parts.append("Write the complete policy module for this goal.")
    return "\n\n".join(parts)


def build_repair_prompt(task: Task, pack: ContextPack, repair: Repair) -> str:
    """Ask for a corrected module after a load failure (no examples: the error is the point)."""
    where = f" at line {repair.lineno}" if repair.lineno else ""
    parts = [
        task_section(task),
        context_section(pack, with_examples=False),
        f"THE POLICY BELOW FAILED TO LOAD{where}\n{repair.message.strip()}"
        f"{_quoted_line(repair.code, repair.lineno)}",
        f"```python\n{repair.code.rstrip()}\n```",
        *([repair.extraction_note] if repair.extraction_note else []),
        "Fix the load error (and anything else that breaks the rules) and return the complete "
        "corrected module.",
    ]
    return "\n\n".join(parts)
