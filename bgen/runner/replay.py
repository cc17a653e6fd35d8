"""Grades computed where policy code never runs: the trusted replay of an episode's commands.

A policy process reports, per step, the commands the agent received (``StepLog.commands``)
and where the agent was. This module runs in the caller's process, which never imports or
calls policy code: it builds the episode's world again from (scenario, seed), applies the
commands to a fresh agent exactly as the episode loop does (``bgen.runner.episode``, steps
2–4: commands, chase target, dynamics, collisions) and grades the replayed flight.

    reported steps (JSON) ──► parse_commands ──► replay_flight ──► Flight(positions (N,3),
                                                  (simulator,       collisions_total (N,))
                                                   no policy)            │
    reported positions ───────────────────────► first_disagreement ◄────┤
                                                                         ▼
                                                              grade_replay → outcome

The guarantee: an episode is graded ``success`` only if the commands it reported, flown by
the trusted simulator from the episode's start, bring the agent within ``SUCCESS_RADIUS`` of
the target; collisions, distances and path length are the replay's. A reported trajectory
that differs from the replay by more than ``POSITION_TOLERANCE_M`` at any step means the
agent was moved by something other than flying (or the record was forged): the episode's
reason is ``tampered``, never success. The replay is deterministic: the same commands give
bit-identical positions on the same numpy and simulator build.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from bgen.runner.metrics import is_teleport
from bgen.runner.schema import SUCCESS_RADIUS
from bgen.sim.embedded.world import collision_counts

#: Largest disagreement (m) between a reported and a replayed position that is float noise.
POSITION_TOLERANCE_M = 1e-6
#: Bounds a command must respect to be replayed (the sandbox enforces the same).
MAX_COMMAND_MOVES = 100_000
MAX_STEP_COMMANDS = 64
MAX_ABS_YAW = 1_000.0
MAX_URGENCY = 1_000.0
MAX_COORD = 1_000_000
MOVE_CODES = range(8)

_COLLISION_HALF_EXTENTS = [0.5, 0.5, 0.3]


class ReplayError(ValueError):
    """A step's commands are not something the trusted side will fly (the message says why)."""


class ReplayOverrun(Exception):
    """The replay ran longer than any episode that flew these commands could have."""


#: Time a replay may take per recorded step beyond ``replay_budget_s``'s fixed part (s):
#: about 50 times what a step costs (~100 µs on a 2-core AMD EPYC).
REPLAY_STEP_ALLOWANCE_S = 0.005


#: The replay may also take this many times the episode's own wall time (the caller's clock),
#: up to ``REPLAY_EPISODE_MAX_S``: a forged record cannot keep a shared grader much longer.
REPLAY_EPISODE_FACTOR = 2.0
REPLAY_EPISODE_MAX_S = 60.0


def replay_budget_s(config, steps: int, episode_s: float = 0.0) -> float:
    """Longest an honest replay of ``steps`` steps may take (s); ``episode_s`` is how long
    the episode's policy process ran, timed by the caller (never by the policy process).

    A policy process that took longer than ``act_budget_s + stall_grace_s`` over one step
    was killed (``timeout``), so no honest record holds such a step; the allowance per step
    covers the rest with a wide margin. A replay does part of what its episode did (the same
    commands and dynamics, no policy code), so twice the episode's time, up to a minute, also
    covers an honest episode whose commands were heavy (dozens of long intents a step). A
    forged record that makes the simulator slow (thousands of queued moves a step that no
    episode gave within its time) is stopped here instead of keeping a grader for minutes.
    """
    extra = min(REPLAY_EPISODE_FACTOR * max(float(episode_s), 0.0), REPLAY_EPISODE_MAX_S)
    return config.act_budget_s + config.stall_grace_s + steps * REPLAY_STEP_ALLOWANCE_S + extra


@dataclass
class Flight:
    """The replayed flight: plain arrays, one row per step (what a task grader reads).

    ``positions`` (N, 3) m, the agent's position after each step's dynamics;
    ``collisions_total`` (N,) cumulative count of cells touched up to each step;
    ``teleport_step`` the first step a Hold/SetPos command moved the agent (or None);
    ``rejected`` commands the agent refused; ``diverged_step`` the first step the dynamics
    gave a non-finite position (or None).
    """

    positions: np.ndarray
    collisions_total: np.ndarray
    start: np.ndarray
    teleport_step: int | None = None
    rejected: int = 0
    diverged_step: int | None = None


def _finite(value, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or not low <= value <= high:
        raise ReplayError(f"{name}: expects a finite number in [{low}, {high}], "
                          f"actual: {str(value)[:40]}")
    return float(value)


def parse_commands(raw) -> list[tuple]:
    """One step's ``commands`` (JSON) as tuples the replay applies; ReplayError if malformed.

    ``("Replace"|"Push", urgency, yaw, (codes...))``, ``("Hold", (x, y, z), yaw)``,
    ``("SetPos", (x, y, z))``.
    """
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_STEP_COMMANDS:
        raise ReplayError(f"commands: expects a list of at most {MAX_STEP_COMMANDS}")
    parsed = []
    for item in raw:
        if not isinstance(item, dict):
            raise ReplayError("command: expects an object")
        mode = item.get("mode")
        if mode in ("Replace", "Push"):
            moves = item.get("moves")
            if not isinstance(moves, list) or len(moves) > MAX_COMMAND_MOVES or not all(
                    type(code) is int and code in MOVE_CODES for code in moves):
                raise ReplayError("command.moves: expects a list of MoveDir codes 0-7")
            parsed.append((mode, _finite(item.get("urgency"), "urgency", 1e-12, MAX_URGENCY),
                           _finite(item.get("yaw"), "yaw", -MAX_ABS_YAW, MAX_ABS_YAW),
                           tuple(moves)))
        elif mode == "Hold":
            coord = item.get("coord")
            if not isinstance(coord, list) or len(coord) != 3 or not all(
                    type(v) is int and abs(v) <= MAX_COORD for v in coord):
                raise ReplayError("command.coord: expects three integers")
            parsed.append((mode, tuple(coord),
                           _finite(item.get("yaw"), "yaw", -MAX_ABS_YAW, MAX_ABS_YAW)))
        elif mode == "SetPos":
            pos = item.get("pos")
            if not isinstance(pos, list) or len(pos) != 3:
                raise ReplayError("command.pos: expects three numbers")
            parsed.append((mode, tuple(_finite(v, "pos", -MAX_COORD, MAX_COORD) for v in pos)))
        else:
            raise ReplayError(f"command.mode: expects Replace, Push, Hold or SetPos, "
                              f"actual: {str(mode)[:40]}")
    return parsed


def _apply(vxs, agent, command: tuple, moves_by_code: list) -> bool:
    """Apply one command as the episode loop did; False when the agent refused it."""
    mode = command[0]
    try:
        if mode in ("Replace", "Push"):
            intent = vxs.ActionIntent(command[1], command[2],
                                      [moves_by_code[code] for code in command[3]])
            if mode == "Push":
                agent.push_back_intent_py(intent)
            else:
                agent.perform_oneshot_py(intent)
        elif mode == "Hold":
            agent.set_hold_py(list(command[1]), command[2])
        else:
            agent.set_pos(list(command[1]))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: B036 - a refused intent (or a panic) is the agent's answer
        return False
    return True


def replay_flight(vxs, sim, delta: float, steps: list[list[tuple]],
                  max_speed_mps: float, deadline: float | None = None) -> Flight:
    """Fly ``steps`` (parsed commands per step) with the simulator objects of ``sim``.

    ``sim`` must be fresh from ``episode.build_sim`` for the episode's config and seed.
    ``deadline`` (``time.monotonic()``): raises ``ReplayOverrun`` when a step ends past it.
    """
    agent, world = sim.agent, sim.world
    moves_by_code = [vxs.MoveDir.from_code_py(code) for code in MOVE_CODES]
    count = len(steps)
    positions = np.zeros((count, 3))
    rejected, teleport_step, diverged_step = 0, None, None
    prev = tuple(agent.get_pos())
    start = np.asarray(prev, dtype=float)
    for index, commands in enumerate(steps):
        for command in commands:
            before = tuple(agent.get_pos())
            if not _apply(vxs, agent, command, moves_by_code):
                rejected += 1
            elif command[0] in ("Hold", "SetPos") and tuple(agent.get_pos()) != before \
                    and teleport_step is None:
                teleport_step = index
        if agent.get_action_py() is not None:
            chase = sim.chaser.step_chase_py(agent, delta)
            sim.dynamics.update_agent_dynamics_py(agent, sim.env, chase, delta)
        pos = tuple(agent.get_pos())
        if diverged_step is None and not all(map(math.isfinite, pos)) and not any(
                command[0] in ("Hold", "SetPos") for command in commands):
            diverged_step = index       # the dynamics, not a command: no teleport
        if teleport_step is None and diverged_step is None and \
                is_teleport(prev, pos, delta, max_speed_mps):
            teleport_step = index
        positions[index] = pos
        prev = pos
        if deadline is not None and time.monotonic() > deadline:
            raise ReplayOverrun(f"the replay passed its budget at step {index} of {count}")
    return Flight(positions=positions,
                  collisions_total=_collisions_total(world, positions, deadline), start=start,
                  teleport_step=teleport_step, rejected=rejected, diverged_step=diverged_step)


def _collisions_total(world, positions: np.ndarray, deadline: float | None) -> np.ndarray:
    """(N,) cumulative count of cells touched up to each step of a flight.

    The world never changes during a replay, so the positions are counted after the flight:
    the embedded world counts them all at once (``collision_counts``), any other is asked
    position by position.
    """
    counts = collision_counts(world, positions, _COLLISION_HALF_EXTENTS)
    if counts is None:
        counts = np.zeros(len(positions), dtype=np.int64)
        for index, pos in enumerate(positions.tolist()):
            counts[index] = len(world.collisions_py(pos, _COLLISION_HALF_EXTENTS))
            if deadline is not None and time.monotonic() > deadline:
                raise ReplayOverrun(f"the replay passed its budget counting the collisions of "
                                    f"step {index} of {len(positions)}")
    return np.cumsum(counts)


def grade_replay(flight: Flight, sim, config) -> dict:
    """The outcome of a replayed flight; the one place that decides success.

    Success is every check of the episode's task spec holding (``bgen.runner.taskspec``; by
    default: within 1.0 m of ``sim.target``) at some step before any teleport, judged by
    ``taskspec.grade_flight`` on the replayed positions and collision counts and the world as
    built; the episode ends at the first such step. Returns ``{"success", "end_step" (index or
    None), "time_to_goal" (s or None), "collisions_total", "path_len_est" (m),
    "final_distance_to_target", "min_distance_to_target", "steps", "checks", "score"}``
    computed over the steps up to the end.
    """
    from bgen.runner import taskspec
    from bgen.runner.episode import episode_spec
    positions = flight.positions
    count = len(positions)
    usable = count if flight.teleport_step is None else flight.teleport_step
    resolved = episode_spec(config, sim)
    verdict = taskspec.grade_flight(resolved, positions[:usable], flight.collisions_total[:usable],
                                    sim.world if resolved.needs_world else None, config.delta)
    end = verdict.end_step if verdict.success else None
    last = end if end is not None else count - 1
    target = np.asarray(sim.target, dtype=float)
    distances = np.sqrt(((positions - target) ** 2).sum(axis=1)) if count else np.zeros(0)
    path = np.vstack([flight.start[None, :], positions[: last + 1]])
    steps_taken = np.sqrt((np.diff(path, axis=0) ** 2).sum(axis=1)) if len(path) > 1 else \
        np.zeros(0)
    return {
        "success": end is not None,
        "end_step": end,
        "time_to_goal": (end + 1) * config.delta if end is not None else None,
        "collisions_total": int(flight.collisions_total[last]) if count else 0,
        "path_len_est": float(steps_taken.sum()),
        "final_distance_to_target": float(distances[last]) if count else None,
        "min_distance_to_target": float(distances[: last + 1].min()) if count else None,
        "steps": last + 1 if count else 0,
        "checks": verdict.checks,
        "score": verdict.score,
    }


def first_disagreement(flight: Flight, reported: np.ndarray,
                       tolerance: float = POSITION_TOLERANCE_M) -> int | None:
    """The first step whose reported position is farther than ``tolerance`` from the replay
    (NaN counts as far, unless the replay is not finite there either), or None when they
    agree."""
    count = min(len(flight.positions), len(reported))
    if count == 0:
        return None
    replayed, told = flight.positions[:count], reported[:count]
    gaps = np.abs(replayed - told)
    gaps[~np.isfinite(replayed) & ~np.isfinite(told)] = 0.0    # both diverged there
    gap = gaps.max(axis=1)
    bad = np.flatnonzero(~(gap <= tolerance))
    return int(bad[0]) if len(bad) else None


def _shown(pos) -> str:
    return "(" + ", ".join(f"{float(v):.6f}" for v in pos) + ")"


def grade_episode(summary: dict, steps: list[dict], config, seed: int, vxs=None,
                  episode_s: float = 0.0) -> dict:
    """``summary`` with its grade replaced by the trusted replay of ``steps``' commands.

    ``steps`` are the step records the policy process reported (``agent_pos`` and
    ``commands`` are read); ``config`` the EpisodeConfig, ``seed`` the episode's seed. The
    result's ``success``, ``collisions_total``, ``path_len_est``, ``time_to_goal`` and
    distances are the replay's; ``reason`` becomes ``tampered`` when the reported flight
    disagrees with the replay (or its record cannot be replayed), ``teleport`` when a replayed
    Hold/SetPos moved the agent. Never raises for anything in ``steps``.
    """
    from dataclasses import replace
    from bgen.runner.episode import build_sim
    graded = dict(summary)
    if not steps:
        if graded.get("reason") == "success" or graded.get("success"):
            return _tampered(graded, "the episode reported success without a single step on "
                                     "record")
        graded["success"] = False
        return graded
    try:
        parsed = [parse_commands(step.get("commands")) for step in steps]
        # null is how a step line says NaN or ±Infinity (JSON has neither)
        reported = np.array([[math.nan if v is None else float(v) for v in step["agent_pos"]]
                             for step in steps])
        if reported.shape != (len(steps), 3):
            raise ReplayError("agent_pos: expects three numbers per step")
    except (ReplayError, KeyError, TypeError, ValueError, AttributeError) as error:
        return _tampered(graded, f"the episode's record cannot be replayed ({error})")
    if vxs is None:
        from bgen.sim import load_backend
        vxs = load_backend(config.backend)
    sim = build_sim(vxs, replace(config, render=False), seed)
    budget = replay_budget_s(config, len(parsed), episode_s)
    try:
        flight = replay_flight(vxs, sim, config.delta, parsed, config.max_speed_mps,
                               deadline=time.monotonic() + budget)
    except ReplayOverrun as overrun:
        return _tampered(graded, f"{overrun} ({budget:.1f} s for {len(parsed)} steps): no "
                                 f"episode that flew these commands records them")
    grade = grade_replay(flight, sim, config)
    for name in ("success", "collisions_total", "path_len_est", "time_to_goal",
                 "final_distance_to_target", "min_distance_to_target", "checks", "score"):
        graded[name] = grade[name]
    # How long it flew, and from where, are the record's and the world's, never the summary's:
    # rankings and a "minimize time" objective read them.
    flown = grade["steps"] if grade["success"] else len(parsed)
    graded.update(steps=flown, sim_time_s=flown * config.delta,
                  start=[int(v) for v in sim.start], target=[float(v) for v in sim.target])
    gap = first_disagreement(flight, reported)
    if flight.diverged_step is not None and gap is None:
        from bgen.runner.episode import diverged_note
        graded.update(success=False, reason="sim_error", time_to_goal=None,
                      reasons=diverged_note(flight.diverged_step, config.delta))
        return graded
    if flight.teleport_step is not None or graded.get("reason") == "teleport":
        graded["success"] = False
        if graded.get("reason") != "teleport":
            graded["reason"] = "teleport"
            graded["reasons"] = (f"step {flight.teleport_step}: set_pos/set_hold_py moved the "
                                 "agent; only the dynamics may move it")
        return graded
    if gap is not None:
        return _tampered(graded, (
            f"step {gap}: the reported position {_shown(reported[gap])} differs from the "
            f"replay of the commands {_shown(flight.positions[gap])} by "
            f"{float(np.linalg.norm(reported[gap] - flight.positions[gap])):.3g} m: the agent "
            f"was moved by something other than flying"))
    if graded.get("reason") == "success" and not grade["success"]:
        return _tampered(graded, "the episode reported success but the replay of its "
                                 "commands did not pass every check of the task")
    if grade["success"] and graded.get("reason") != "success":
        graded["success"] = False       # ended otherwise (an error at the goal step, say)
    return graded


def _tampered(graded: dict, note: str) -> dict:
    graded.update(success=False, reason="tampered", reasons=note, time_to_goal=None)
    return graded
