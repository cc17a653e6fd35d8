"""Simulator benchmark: the standard headless episode, timed phase by phase.

    python -m bgen.bench sim [--backend NAME] [--steps 3000] [--delta 0.01] [--seed 0]
                             [--urgency 1.0] [--json]

The standard episode: the random-terrain world of ``--seed`` (world size 200), an agent
holding [50, 50, -20], the A* plan (padding 1) to [60, 60, -20] performed once, then per
step: chaser step, quad dynamics, ``world.collisions_py(pos, [0.5, 0.5, 0.3])`` and the
distance to the target. Chaser and dynamics run every step, also after the action is done
(the dynamics then brake; the reference runner skips them once the agent holds, so this
is the costlier variant). Nothing stops early, so every run does the same work.

The episode runs twice from the same start: once bare, for steps/s and the real-time
factor (simulated seconds per wall second), once with a clock around each phase, for the
per-phase breakdown. It prints what it measured; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import types

from bgen.errors import ConfigError
from bgen.sim import BACKEND_NAMES, backend_label, load_backend

START = (50, 50, -20)
TARGET = (60, 60, -20)
COLLISION_DIMS = [0.5, 0.5, 0.3]
PLANNER_PADDING = 1
SUCCESS_DISTANCE = 1.0
PHASES = ("chase", "dynamics", "collisions", "distance")


def build_world(vxs: types.ModuleType, seed: int):
    """The terrain world of the standard episode (bgen.sim.scenarios' terrain scenario)."""
    from bgen.sim.scenarios import terrain_world

    return terrain_world(vxs, seed)


MAX_LIFT = 40


def plan_standard(vxs: types.ModuleType, world, urgency: float):
    """(start, target, intent, lift, error): the A* plan from START to TARGET.

    START and TARGET are first placed above terrain and trees as every episode places them
    (``scenarios.place_above_obstacles``: on some seeds [50, 50, -20] lies inside the ground).
    Should A* still find no path (padding 1 is stricter than the episode's), both are raised
    one more cell at a time (z decreases: up) until a plan exists; ``lift`` says by how many
    cells and ``error`` is the first planner error (None when the placed points planned).
    """
    from bgen.sim.scenarios import place_above_obstacles

    planner = vxs.AStarActionPlanner(PLANNER_PADDING)
    placed_start = place_above_obstacles(world, START)
    placed_target = place_above_obstacles(world, TARGET)
    first_error = None
    for lift in range(MAX_LIFT + 1):
        start = (placed_start[0], placed_start[1], placed_start[2] - lift)
        target = (placed_target[0], placed_target[1], placed_target[2] - lift)
        try:
            intent = planner.plan_action_py(world, list(start), list(target), urgency, 0.0)
        except Exception as error:  # voxelsim raises a plain Exception
            first_error = first_error or str(error)
            continue
        return start, target, intent, lift, first_error
    raise RuntimeError(f"no plan from {START} to {TARGET} lifted by up to {MAX_LIFT} cells: "
                       f"{first_error}")


def _setup(vxs, start, intent):
    agent = vxs.Agent(0)
    agent.set_hold_py(list(start), 0.0)
    agent.perform_oneshot_py(intent)
    return (agent, vxs.FixedLookaheadChaser.default_py(),
            vxs.QuadDynamics(vxs.QuadParams.default_py()), vxs.EnvState.default_py())


def _bare_run(vxs, world, start, target, intent, steps: int, delta: float) -> float:
    """Wall seconds for ``steps`` steps with no instrumentation inside the loop."""
    agent, chaser, dynamics, env = _setup(vxs, start, intent)
    tx, ty, tz = target
    started = time.perf_counter()
    for _ in range(steps):
        chase = chaser.step_chase_py(agent, delta)
        dynamics.update_agent_dynamics_py(agent, env, chase, delta)
        pos = agent.get_pos()
        world.collisions_py(pos, COLLISION_DIMS)
        math.sqrt((pos[0] - tx) ** 2 + (pos[1] - ty) ** 2 + (pos[2] - tz) ** 2)
    return time.perf_counter() - started


def _timed_run(vxs, world, start, target, intent, steps: int, delta: float) -> dict:
    """The same episode with a clock around each phase, plus what the flight did.

    Phase times are kept apart for steps that began with an action (the chaser searches the
    trajectory) and steps that began holding (the chaser returns the hold cell).
    """
    agent, chaser, dynamics, env = _setup(vxs, start, intent)
    tx, ty, tz = target
    clock = time.perf_counter
    totals = {True: [0.0, 0.0, 0.0, 0.0, 0], False: [0.0, 0.0, 0.0, 0.0, 0]}
    completed_step = reached_step = None
    min_distance = math.inf
    collisions_total = 0
    acting = agent.get_action_py() is not None
    for step in range(steps):
        t0 = clock()
        chase = chaser.step_chase_py(agent, delta)
        t1 = clock()
        dynamics.update_agent_dynamics_py(agent, env, chase, delta)
        t2 = clock()
        pos = agent.get_pos()
        hits = world.collisions_py(pos, COLLISION_DIMS)
        t3 = clock()
        distance = math.sqrt((pos[0] - tx) ** 2 + (pos[1] - ty) ** 2 + (pos[2] - tz) ** 2)
        t4 = clock()
        bucket = totals[acting]
        bucket[0] += t1 - t0
        bucket[1] += t2 - t1
        bucket[2] += t3 - t2
        bucket[3] += t4 - t3
        bucket[4] += 1
        collisions_total += len(hits)
        min_distance = min(min_distance, distance)
        if reached_step is None and distance < SUCCESS_DISTANCE:
            reached_step = step
        acting = agent.get_action_py() is not None
        if not acting and completed_step is None:
            completed_step = step

    def per_step(buckets):
        count = sum(b[4] for b in buckets)
        if not count:
            return None
        return {name: sum(b[i] for b in buckets) * 1e6 / count
                for i, name in enumerate(PHASES)}

    return {
        "phases_us": per_step([totals[True], totals[False]]),
        "phases_action_us": per_step([totals[True]]),
        "phases_hold_us": per_step([totals[False]]),
        "action_steps": totals[True][4],
        "completed_step": completed_step,
        "reached": reached_step is not None,
        "reached_step": reached_step,
        "min_distance": min_distance,
        "final_pos": agent.get_pos(),
        "final_distance": math.dist(agent.get_pos(), target),
        "collisions_total": collisions_total,
    }


def run_standard_episode(vxs: types.ModuleType, steps: int = 3000, delta: float = 0.01,
                         seed: int = 0, urgency: float = 1.0) -> dict:
    """Run the standard episode on backend ``vxs``; returns the measurements as a dict.

    Keys: backend, steps, delta, seed, urgency, world_s, plan_s, plan_moves, start, target,
    lift (cells the start and target were raised, see ``plan_standard``), unlifted_plan_error,
    wall_s,
    steps_per_s, real_time_factor, phases_us {chase, dynamics, collisions, distance} (mean
    over all steps), phases_action_us / phases_hold_us (mean over the steps that began with
    an action / holding; None when there were none), action_steps, completed_step, reached, reached_step, min_distance, final_pos,
    final_distance, collisions_total.
    """
    started = time.perf_counter()
    world = build_world(vxs, seed)
    world_s = time.perf_counter() - started
    started = time.perf_counter()
    start, target, intent, lift, plan_error = plan_standard(vxs, world, urgency)
    plan_s = time.perf_counter() - started
    wall_s = _bare_run(vxs, world, start, target, intent, steps, delta)
    result = {
        "backend": backend_label(vxs), "steps": steps, "delta": delta, "seed": seed,
        "urgency": urgency, "world_s": world_s, "plan_s": plan_s, "plan_moves": intent.len(),
        "start": list(start), "target": list(target), "lift": lift,
        "unlifted_plan_error": plan_error if lift else None,
        "wall_s": wall_s,
        "steps_per_s": steps / wall_s if wall_s > 0 else math.inf,
        "real_time_factor": steps * delta / wall_s if wall_s > 0 else math.inf,
    }
    result.update(_timed_run(vxs, world, start, target, intent, steps, delta))
    return result


def format_report(r: dict) -> str:
    """The human-readable report printed by the CLI."""
    def phase_line(label, phases):
        if phases is None:
            return f"{label}: no such steps"
        return (f"{label}: " + "  ".join(f"{name} {value:.1f}" for name, value in phases.items())
                + f"  total {sum(phases.values()):.1f}")

    lines = [
        f"bench: {r['backend']} backend, {r['steps']} steps of {r['delta']} s, "
        f"terrain seed {r['seed']}, urgency {r['urgency']}",
        f"setup: world {r['world_s']:.2f} s, A* plan {r['plan_s'] * 1000:.1f} ms "
        f"({r['plan_moves']} moves from {r['start']} to {r['target']})",
        f"steps/s: {r['steps_per_s']:,.0f}   real-time factor: {r['real_time_factor']:,.0f}x   "
        f"(wall {r['wall_s']:.3f} s for {r['steps'] * r['delta']:.1f} s simulated)",
        phase_line("per step (us), all steps", r["phases_us"]),
        phase_line("per step (us), with an action", r["phases_action_us"]),
        phase_line("per step (us), holding", r["phases_hold_us"]),
        f"action: {r['action_steps']} steps with an action; "
        + (f"completed at step {r['completed_step']}" if r["completed_step"] is not None
           else "not completed"),
        "target: " + (f"reached at step {r['reached_step']}" if r["reached"] else "not reached")
        + f" (closest {r['min_distance']:.2f}, final distance {r['final_distance']:.2f}, "
          f"collisions {r['collisions_total']})",
    ]
    if r["lift"]:
        lines.insert(2, f"note: start and target raised {r['lift']} more cells above the "
                        f"placed points for A* (padding {PLANNER_PADDING}) to find a path")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bgen.bench sim",
                                     description="Time the standard headless episode.")
    parser.add_argument("--backend", default=None, choices=BACKEND_NAMES,
                        help="simulator backend (default: $BGEN_SIM_BACKEND or auto)")
    parser.add_argument("--steps", type=int, default=3000, help="steps per run (default 3000)")
    parser.add_argument("--delta", type=float, default=0.01, help="step length, s (default 0.01)")
    parser.add_argument("--seed", type=int, default=0, help="terrain seed (default 0)")
    parser.add_argument("--urgency", type=float, default=1.0,
                        help="urgency of the planned intent (default 1.0)")
    parser.add_argument("--json", action="store_true", help="print the result dict as JSON")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps: expects an integer >= 1, actual: {args.steps}")
    if not args.delta > 0:
        parser.error(f"--delta: expects a number > 0, actual: {args.delta}")
    if not args.urgency > 0:
        parser.error(f"--urgency: expects a number > 0, actual: {args.urgency}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        vxs = load_backend(args.backend)
    except ConfigError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    from bgen.machine import describe
    result = run_standard_episode(vxs, args.steps, args.delta, args.seed, args.urgency)
    result["machine"] = describe()
    print(json.dumps(result, indent=2) if args.json else f"machine: {result['machine']}\n" + format_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
