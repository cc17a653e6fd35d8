"""One episode: a loaded policy flying one agent in one world, step by step, at full speed.

The step mirrors the reference runner (``bgen/runner/run_policy.py`` and ``python/povtest.py``
of Merlotec/vxs):

    1. act(t, agent, world, fw, env, helpers)    → intent | (intent, "Replace"|"Push") | None
       an intent replaces the current action (default) or is pushed behind it
    2. if the agent has an action: chaser target for this step, then dynamics for ``delta``
    3. when rendering: POV + vision update when the filter world is idle and
       ``pov_min_dt_world`` of simulated time has passed; the world every second of wall
       time; the agents every step
    4. collisions ``world.collisions_py(pos, [0.5, 0.5, 0.3])``, path length, distance to the
       target; a jump faster than the dynamics allow ends the episode (``teleport``); within
       ``SUCCESS_RADIUS`` of the target ends it with success
       (in general: the task spec's ``FlightTracker`` ends it when every check holds; the
       default spec is that same reach-the-target check)
    5. collect(step_ctx) → small dict of notes; the step log goes to the sink

Simulated time is ``step * delta`` and is what ``act`` receives as ``t``; nothing sleeps.
All state lives in ``Sim`` and locals of ``run_loaded``; the only randomness is the
``numpy.random.Generator`` seeded from the episode seed. This module never starts a process
or opens a file: the worker (``worker.py``) and the benchmark call it, and it reports through
an ``EpisodeSink``.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from bgen.errors import ConfigError, PolicyError, PolicyLoadError
from bgen.runner import taskspec
from bgen.runner.metrics import (MAX_EPISODE_NOTE_CHARS, MAX_SUMMARY_VALUE_CHARS, EpisodeStats,
                                 clean_policy_log, distance, is_teleport, max_step_distance,
                                 notes_size)
from bgen.runner.schema import EpisodeSummary, StepLog
from bgen.sim import scenarios, worldcache
from bgen.sim.embedded.agent import round_to_i32

COLLISION_HALF_EXTENTS = [0.5, 0.5, 0.3]
WORLD_RESEND_S = 1.0
SCENARIOS = ("terrain", "wind_farm")


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EpisodeConfig:
    """Everything an episode and its worker need besides the policy source and the seed.

    Simulation: ``max_steps``, ``delta`` (s per step), ``target`` (None: the scenario's
    default), ``start`` (None: the scenario's), ``scenario``, ``use_px4``, ``backend``.
    Rendering: ``render``, ``render_host``, ``render_ports`` (world, agents, first POV, first
    POV-agents), ``pov_size``, ``pov_min_dt_world`` (s of simulated time between POVs).
    Limits (enforced by the worker): ``act_budget_s`` per policy call, ``episode_deadline_s``
    wall clock per episode (the parent kills), ``cpu_limit_s`` (None: the deadline),
    ``memory_limit_mb`` (address space), ``max_open_files``, ``stall_grace_s`` (silence
    beyond the act budget after which the parent kills a worker that swallowed its alarm).
    Checks: ``max_speed_mps`` bounds one step's movement (faster is a teleport).
    ``lift_above_terrain``: a start or target inside terrain/trees is lifted straight up
    (``scenarios.place_above_obstacles``); the effective ones are in the summary.
    Output: ``trace_steps`` steps kept in ``trace.<seed>.json``; ``max_record_bytes`` (None:
    the runner's own cap for ``max_steps``) bounds what one episode may send as its records
    (the iteration loop sets it to the episode's share of the run's disk budget).
    ``world_cache_dir``: where built worlds are shared between processes and runs
    (``bgen.sim.worldcache``); None keeps them in the process only.
    Grading: ``task_spec`` is the task spec document (plain JSON data, see
    ``bgen.runner.taskspec``; None: reach the target within 1.0 m); the episode ends when
    every check holds, and the summary carries each check's result.
    """

    max_steps: int = 5000
    delta: float = 0.01
    target: tuple[float, float, float] | None = None
    start: tuple[int, int, int] | None = None
    scenario: str = "terrain"
    render: bool = False
    render_host: str = "127.0.0.1"
    render_ports: tuple[int, int, int, int] = (8080, 8081, 8090, 9090)
    pov_size: tuple[int, int] = (200, 150)
    pov_min_dt_world: float = 0.05
    use_px4: bool = True
    backend: str = "auto"
    act_budget_s: float = 2.0
    episode_deadline_s: float = 600.0
    cpu_limit_s: float | None = None
    memory_limit_mb: int = 2048
    max_open_files: int = 64
    stall_grace_s: float = 5.0
    max_speed_mps: float = 50.0
    trace_steps: int = 50
    lift_above_terrain: bool = True
    world_cache_dir: str | None = None
    task_spec: dict | None = None
    max_record_bytes: int | None = None

    def __post_init__(self):
        for problem in config_problems(self):
            raise ConfigError(problem[1], field=problem[0])


#: Bounds of an episode's settings, on every front door: past them a setting means nothing a
#: run could use (and some overflow the clocks and integers they reach).
MAX_DELTA_S = 1.0                  # s per step (the server's bound too)
MIN_DELTA_S = 1e-4                 # s per step: 10,000 steps a simulated second
MAX_CALL_BUDGET_S = 3600.0         # s for one policy call, and for the stall grace
MAX_EPISODE_S = 30 * 86400.0       # s of wall clock or CPU for one episode
MAX_COORD = 1e6                    # m (voxels) of a start or target coordinate
MIN_MEMORY_LIMIT_MB = 256          # below it a policy process cannot even parse its policy


def _plain(number: float) -> str:
    """A bound as people write it: 1000000, not 1e+06."""
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def config_problems(config: EpisodeConfig) -> list[tuple[str, str]]:
    """(field, message) for every invalid field, messages as "field: expects X, actual: Y"."""
    problems = []

    def positive(name, kind=(int, float), allow_none=False, most=None, least=None):
        value = getattr(config, name)
        if value is None and allow_none:
            return
        if not isinstance(value, kind) or not taskspec.is_finite_number(value) or not value > 0 \
                or (most is not None and value > most) or (least is not None and value < least):
            noun = "an integer" if kind is int else "a number"
            wanted = "a positive number" if most is None else \
                f"{noun} in {'(0' if least is None else f'[{_plain(least)}'}, {_plain(most)}]"
            problems.append((name, f"{name}: expects {wanted}, actual: {value!r}"))

    positive("max_steps", int, most=taskspec.MAX_STEP_BUDGET)
    positive("delta", most=MAX_DELTA_S, least=MIN_DELTA_S)
    for name in ("act_budget_s", "stall_grace_s"):
        positive(name, most=MAX_CALL_BUDGET_S)
    for name in ("episode_deadline_s", "cpu_limit_s"):
        positive(name, allow_none=True, most=MAX_EPISODE_S)
    positive("max_speed_mps", most=MAX_COORD)
    positive("pov_min_dt_world", most=60.0)
    positive("memory_limit_mb", int, most=1 << 20, least=MIN_MEMORY_LIMIT_MB)
    positive("max_open_files", int)
    positive("trace_steps", int)
    positive("max_record_bytes", int, allow_none=True)
    if config.world_cache_dir is not None and not isinstance(config.world_cache_dir, str):
        problems.append(("world_cache_dir", "world_cache_dir: expects a directory path or None, "
                                            f"actual: {config.world_cache_dir!r}"))
    if config.scenario not in SCENARIOS:
        problems.append(("scenario", f"scenario: expects one of {', '.join(SCENARIOS)}, "
                                     f"actual: {config.scenario!r}"))
    for name, length in (("target", 3), ("start", 3), ("render_ports", 4), ("pov_size", 2)):
        value = getattr(config, name)
        if value is None and name in ("target", "start"):
            continue
        point = name in ("target", "start")
        if not isinstance(value, tuple) or len(value) != length or not all(
                taskspec.is_finite_number(v) and (not point or abs(v) <= MAX_COORD)
                for v in value):
            within = f" within +-{_plain(MAX_COORD)}" if point else ""
            problems.append((name, f"{name}: expects {length} numbers{within}, actual: {value!r}"))
    if config.task_spec is not None and config.scenario in SCENARIOS:
        try:
            spec = taskspec.parse_task_spec(config.task_spec, prefix="task_spec")
            taskspec.check_landmarks(spec, landmark_names(config.scenario), prefix="task_spec")
        except taskspec.TaskSpecError as error:
            problems.append((error.field, error.message))
    return problems


def landmark_names(scenario: str) -> set[str]:
    """Every landmark a task spec may name in ``scenario``."""
    return set(scenarios.scenario_landmarks(scenario)) | {"start", "target"}


def episode_spec(config: EpisodeConfig, sim: "Sim") -> taskspec.ResolvedSpec:
    """The episode's task spec resolved: landmarks from the effective start and target (after
    lifting) and the scenario. The worker's tracker and the trusted replay both use it."""
    spec = taskspec.parse_task_spec(config.task_spec)
    marks = taskspec.episode_landmarks(sim.start, sim.target,
                                       scenarios.scenario_landmarks(config.scenario))
    return taskspec.resolve(spec, marks)


def episode_tracker(config: EpisodeConfig, sim: "Sim") -> taskspec.FlightTracker:
    """The task spec's tracker for this episode, over the world as built (before any policy
    call)."""
    resolved = episode_spec(config, sim)
    return taskspec.FlightTracker(resolved, sim.world if resolved.needs_world else None,
                                  config.delta)


# --------------------------------------------------------------------------------------------
# Control flow: why an episode stops early
# --------------------------------------------------------------------------------------------

class EpisodeInterrupt(BaseException):
    """Raised (from signal handlers or the loop) to end the episode with ``reason``.

    A ``BaseException`` so that a policy's ``except Exception`` does not swallow it; a bare
    ``except:`` can, which is why the parent process also enforces deadlines by killing.
    """

    reason = "terminated"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BudgetExceeded(EpisodeInterrupt):
    reason = "timeout"


class StopRequested(EpisodeInterrupt):
    reason = "terminated"


class SimulatorStalled(EpisodeInterrupt):
    """The simulator's own step ran past the budget (a hang in the simulator, not the policy)."""

    reason = "sim_error"


#: Steps between guarded garbage collections (the worker turns automatic collection off, so
#: a policy object's finaliser runs only inside a budget).
GC_EVERY_STEPS = 200


class EpisodeSink(Protocol):
    """Where an episode reports; the worker batches to its pipe, tests keep lists."""

    def step(self, log: dict) -> None: ...
    def warning(self, message: str) -> None: ...
    def phase(self, name: str) -> None: ...


class ListSink:
    """Keeps everything in memory (tests, in-process runs)."""

    def __init__(self):
        self.steps: list[dict] = []
        self.warnings: list[str] = []
        self.phases: list[str] = []

    def step(self, log):
        self.steps.append(log)

    def warning(self, message):
        self.warnings.append(message)

    def phase(self, name):
        self.phases.append(name)


def no_guard(phase: str):
    """The guard used in-process: no budget (the worker's guard arms an alarm)."""
    return contextlib.nullcontext()


# --------------------------------------------------------------------------------------------
# Errors, as the LLM and the user will read them
# --------------------------------------------------------------------------------------------

def policy_filename() -> str:
    """The filename the sandbox compiles policy code under (frames with it are the policy's)."""
    from bgen.runner import sandbox
    return getattr(sandbox, "POLICY_FILENAME", "<policy>")


def describe_error(error: BaseException, phase: str, source: str | None = None,
                   filename: str | None = None) -> dict:
    """``{"phase", "type", "message", "lineno", "traceback"}`` with policy frames only.

    ``lineno`` is the policy line the error came from (the innermost policy frame, or the
    ``lineno`` a ``PolicyError`` carries); the traceback shows only policy frames, with the
    policy's own source lines, so nothing of bgen's internals reaches the LLM.
    """
    filename = filename or policy_filename()
    lines = source.splitlines() if source is not None else []
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if frame.filename == filename]
    lineno = getattr(error, "lineno", None) if isinstance(error, (PolicyError, SyntaxError)) else None
    if frames:
        lineno = frames[-1].lineno
    text = ["Traceback (policy frames only):"]
    for frame in frames:
        text.append(f'  line {frame.lineno}, in {frame.name}')
        if frame.lineno and 0 < frame.lineno <= len(lines):
            text.append(f"    {lines[frame.lineno - 1].strip()}")
    message = getattr(error, "message", None) if isinstance(error, PolicyError) else None
    if not isinstance(message, str):
        from bgen.runner.sandbox import exception_text   # never runs policy code
        message = exception_text(error)
    kind = type(error).__name__
    text.append(f"{kind}: {message}" if message else kind)
    return {"phase": phase, "type": kind, "message": message,
            "lineno": lineno if isinstance(lineno, int) else None, "traceback": "\n".join(text)}


def error_line(error: dict) -> str:
    """One line for logs and the summary's ``reasons``: "act: ZeroDivisionError: ... (line 7)"."""
    where = f" (line {error['lineno']})" if error.get("lineno") else ""
    if where and str(error.get("message", "")).startswith(f"line {error['lineno']}:"):
        where = ""   # the sandbox's load errors already start with their line
    message = f": {error['message']}" if error.get("message") else ""
    return f"{error['phase']}: {error['type']}{message}{where}"


# --------------------------------------------------------------------------------------------
# Simulation objects
# --------------------------------------------------------------------------------------------

@dataclass
class Sim:
    """Every simulator object of one episode, built from the config and the seed."""

    vxs: Any
    world: Any
    agent: Any
    fw: Any
    env: Any
    chaser: Any
    dynamics: Any
    start: tuple[int, int, int]
    target: tuple[float, float, float]
    rng: np.random.Generator
    proj: Any = None
    camera: Any = None
    vision: Any = None
    dynamic_world: Any = None


def scenario_defaults(scenario: str) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """(start coord, default target) of a scenario, from ``bgen.sim.scenarios``."""
    entry = scenarios.get_scenario(scenario)
    return tuple(int(v) for v in entry.start), tuple(float(v) for v in entry.target)


def requested_points(config: EpisodeConfig, seed: int) -> tuple[tuple, tuple]:
    """(start, target) of episode ``seed`` before lifting: the config's, else the scenario's
    for that seed (``scenarios.episode_points``: the wind farm's start varies by seed)."""
    start, target = scenarios.episode_points(config.scenario, seed)
    start = config.start if config.start is not None else start
    target = config.target if config.target is not None else target
    return tuple(int(v) for v in start), tuple(float(v) for v in target)


def spec_step_budget(config: EpisodeConfig, seeds) -> tuple[int, float]:
    """(steps, route m) for ``config.task_spec`` over episodes ``seeds``: the longest of the
    spec's routes from each seed's nominal start (``taskspec.route_length``), at cruise speed
    with margin, never below ``taskspec.MIN_STEP_BUDGET`` (``taskspec.step_budget``). The
    iteration loop and ``run_policy`` both size episodes with it."""
    spec = taskspec.parse_task_spec(config.task_spec)
    longest = 0.0
    for seed in seeds:
        start, target = requested_points(config, seed)
        marks = taskspec.episode_landmarks(start, target,
                                           scenarios.scenario_landmarks(config.scenario))
        longest = max(longest, taskspec.route_length(taskspec.resolve(spec, marks), start))
    return taskspec.step_budget(longest, config.delta), longest


_POINTS_CACHE: dict = {}


def episode_points(vxs, config: EpisodeConfig, seed: int) -> tuple[list, list]:
    """([x, y, z] start, [x, y, z] target) that episode ``seed`` really flies, lifting included,
    as ``init(config)`` receives them (whole numbers as ints). Builds the world once per
    (scenario, seed, points) and remembers the answer (about 0.8 s per terrain seed)."""
    start, target = requested_points(config, seed)
    key = (getattr(vxs, "__name__", ""), config.scenario, int(seed), start, target,
           config.lift_above_terrain)
    if key not in _POINTS_CACHE:
        if config.lift_above_terrain:
            world = worldcache.world(vxs, config.scenario, seed, config.world_cache_dir)
            start, target = lift_above_terrain(world, start, target)
        if len(_POINTS_CACHE) > 256:
            _POINTS_CACHE.clear()
        _POINTS_CACHE[key] = (as_coordinate(start), as_coordinate(target))
    found = _POINTS_CACHE[key]
    return list(found[0]), list(found[1])


def lift_above_terrain(world, start, target):
    """Start and target lifted straight up when they lie inside terrain or trees.

    The reference's nominal points ([50, 50, -20], [60, 60, -20]) fall inside the ground on
    some terrain seeds, where no episode can succeed; ``scenarios.place_above_obstacles``
    keeps x, y and moves such a point above the highest cell of its column.
    """
    place = scenarios.place_above_obstacles
    cell = cell_of(target)
    lifted = place(world, cell)
    # A target the caller gave with a fraction keeps it unless it had to move.
    if list(lifted) == cell:
        lifted = target
    return tuple(place(world, cell_of(start))), tuple(float(v) for v in lifted)


def cell_of(point) -> list[int]:
    """The voxel holding ``point`` (m): each coordinate rounded half away from zero, as the
    agent's ``get_coord_py`` rounds (Rust's ``f64::round``; Python's ``round`` would send
    60.5 to 60 and 61.5 to 62)."""
    return [round_to_i32(float(value)) for value in point]


def make_dynamics(vxs, use_px4: bool):
    """PX4-style dynamics when asked for and available (as the reference), else QuadDynamics."""
    px4 = getattr(vxs, "px4", None) if use_px4 else None
    if px4 is not None and hasattr(px4, "Px4Dynamics"):
        return px4.Px4Dynamics.default_py()
    return vxs.QuadDynamics(vxs.QuadParams.default_py())


def build_sim(vxs, config: EpisodeConfig, seed: int) -> Sim:
    """World, agent at the start hold, filter world, dynamics, chaser (and vision if rendering)."""
    rng = np.random.default_rng(seed)
    start, target = requested_points(config, seed)
    world = worldcache.world(vxs, config.scenario, seed, config.world_cache_dir)
    if config.lift_above_terrain:
        start, target = lift_above_terrain(world, start, target)
    agent = vxs.Agent(0)
    agent.set_hold_py([int(v) for v in start], 0.0)
    sim = Sim(vxs=vxs, world=world, agent=agent, fw=vxs.FilterWorld(),
              env=vxs.EnvState.default_py(), chaser=vxs.FixedLookaheadChaser.default_py(),
              dynamics=make_dynamics(vxs, config.use_px4), start=tuple(int(v) for v in start),
              target=tuple(float(v) for v in target), rng=rng)
    if config.render:
        sim.proj = vxs.CameraProjection.default_py()
        sim.camera = vxs.CameraOrientation.vertical_tilt_py(-0.5)
        noise = vxs.NoiseParams.default_with_seed_py([float(v) for v in rng.random(3)])
        sim.vision = vxs.AgentVisionRenderer(world, [int(config.pov_size[0]),
                                                     int(config.pov_size[1])], noise)
        sim.dynamic_world = vxs.VoxelGrid()
    return sim


# --------------------------------------------------------------------------------------------
# Rendering (optional; a renderer that is not listening means headless, with a warning)
# --------------------------------------------------------------------------------------------

class RenderLink:
    """The renderer client and the POV / world-resend gating state of one episode."""

    def __init__(self, client, sim: Sim, pov_min_dt_world: float, clock=time.monotonic):
        self.client = client
        self.sim = sim
        self.pov_min_dt_world = pov_min_dt_world
        self.clock = clock
        self.last_view_stamp = -1.0          # timestamp of the last vision update we started
        self.last_pov_sim_t = -math.inf      # simulated time of the last POV sent
        self.last_world_send = clock()       # wall time of the last full world sent

    @classmethod
    def connect(cls, sim: Sim, config: EpisodeConfig, warn: Callable[[str], None]):
        """A link, or None (with a warning) when nothing listens on the renderer ports."""
        host, ports = config.render_host, config.render_ports
        try:
            client = sim.vxs.RendererClient(host, *[int(p) for p in ports], 1)
            client.send_world_py(sim.world)
            client.send_agents_py({0: sim.agent})
        except Exception as error:
            warn(f"renderer not reachable at {host}:{ports[0]} ({error}); continuing headless")
            return None
        return cls(client, sim, config.pov_min_dt_world)

    def step(self, sim_t: float) -> None:
        sim = self.sim
        now = self.clock()
        if sim_t - self.last_pov_sim_t >= POV_MAX_LAG_PERIODS * self.pov_min_dt_world:
            self.await_view()
        if not sim.fw.is_updating_py(self.last_view_stamp) and (
                sim_t - self.last_pov_sim_t >= self.pov_min_dt_world):
            sim.fw.send_pov_py(self.client, 0, 0, sim.proj, sim.camera)
            sim.vision.update_filter_world_py(sim.agent.camera_view_py(sim.camera), sim.proj,
                                              sim.fw, sim.dynamic_world, sim_t, _ignore_update)
            self.last_view_stamp = sim_t
            self.last_pov_sim_t = sim_t
        if now - self.last_world_send >= WORLD_RESEND_S:
            self.client.send_world_py(sim.world)
            self.last_world_send = now
        self.client.send_agents_py({0: sim.agent})


    def await_view(self) -> None:
        """Wait (bounded) for the vision update in flight, as the reference's interactive loop
        does once a view is overdue.

        Without this, the POV falls arbitrarily far behind a full-speed episode: the embedded
        backend's vision runs in a Python thread that a busy step loop starves of the GIL
        (two views in 3,000 steps were measured), and a GPU can lag too.
        """
        deadline = self.clock() + POV_WAIT_LIMIT_S
        while self.sim.fw.is_updating_py(self.last_view_stamp) and self.clock() < deadline:
            time.sleep(POV_POLL_S)


POV_MAX_LAG_PERIODS = 5     # the simulation may run this many POV periods ahead of the last view
POV_WAIT_LIMIT_S = 2.0      # never wait longer than this for one view (wall seconds)
POV_POLL_S = 0.0005


def _ignore_update(*_args):
    return None


# --------------------------------------------------------------------------------------------
# The act() result
# --------------------------------------------------------------------------------------------

def split_act_result(policy, result) -> tuple[Any, str]:
    """``(intent or None, "Replace"|"Push")`` from what act() returned; PolicyError if malformed.

    The sandbox owns the contract (``LoadedPolicy.check_act_result``).
    """
    checked = policy.check_act_result(result)
    return (None, "Replace") if checked is None else checked


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------

@dataclass
class EpisodeOutcome:
    """What one episode produced besides its steps: the summary, the error, the policy output."""

    summary: EpisodeSummary
    error: dict | None = None              # describe_error(), traceback included
    output: str = ""                       # what the policy printed (captured by the sandbox)
    warnings: list[str] = field(default_factory=list)


class _End(Exception):
    """Internal: leave the step loop with a reason (and maybe an error)."""

    def __init__(self, reason: str, error: dict | None = None, note: str | None = None):
        super().__init__(reason)
        self.reason, self.error, self.note = reason, error, note


def load(source: str, vxs, guard=no_guard, seed: int = 0, code=None):
    """The sandbox's LoadedPolicy (``code``: ``sandbox.compile_policy(source)``, when compiled
    already); PolicyLoadError (or EpisodeInterrupt) propagates."""
    from bgen.runner import sandbox
    with guard("load"):
        return sandbox.load_policy(source, vxs, seed=seed, code=code)


def policy_config(sim: Sim, config: EpisodeConfig, seed: int) -> dict:
    """What init(config) receives.

    A target on whole numbers is given as ints, as the reference's --target gives it: it is a
    voxel coordinate, and policies pass it straight to plan_to, where a float is a TypeError.
    ``landmarks``: every point a task spec may name, as this episode's spec resolves them
    (``taskspec.episode_landmarks``: the scenario's, and start and target as flown).
    """
    marks = taskspec.episode_landmarks(sim.start, sim.target,
                                       scenarios.scenario_landmarks(config.scenario))
    return {"target": as_coordinate(sim.target), "start": as_coordinate(sim.start), "seed": seed,
            "max_steps": config.max_steps, "delta": config.delta, "scenario": config.scenario,
            "landmarks": {name: as_coordinate(point) for name, point in marks.items()}}


def as_coordinate(point) -> list:
    """``point`` as a list, with ints when every component is a whole number."""
    values = [float(v) for v in point]
    if all(math.isfinite(v) and v.is_integer() for v in values):
        return [int(v) for v in values]
    return values


def _same_position(a, b) -> bool:
    return len(a) == len(b) and all(x == y or (x != x and y != y) for x, y in zip(a, b))


def check_not_moved(agent, expected: tuple, phase: str) -> None:
    """End the episode (``teleport``) when a policy call moved the agent.

    Only the dynamics may move the agent, so across ``init``, ``act`` and ``collect`` its
    position must stay exactly where the runner last measured it. A speed bound alone would
    let ``set_pos`` creep to the target in steps below it.
    """
    pos = tuple(agent.get_pos())
    if not _same_position(pos, expected):
        raise _End("teleport", None, (
            f"{phase}() moved the agent from {_shown_pos(expected)} to {_shown_pos(pos)}: "
            "only the dynamics may move it, set_pos/set_hold_py must not be used to move the "
            "agent; fly with ActionIntents"))


def _shown_pos(pos) -> str:
    return "(" + ", ".join(f"{float(v):.2f}" for v in pos) + ")"


def run_episode(source: str, vxs, config: EpisodeConfig, seed: int, sink: EpisodeSink, *,
                guard=no_guard, should_stop: Callable[[], bool] | None = None,
                sim: Sim | None = None, before_load: Callable[[], None] | None = None,
                code=None) -> EpisodeOutcome:
    """Build the world, load the policy, run the episode; never raises for policy faults.

    ``before_load`` runs after the world is built and before the policy is loaded (the worker
    applies its resource limits there). ``code``: ``sandbox.compile_policy(source)`` when the
    caller compiled it already. ``EpisodeInterrupt`` raised outside policy code (a CPU-limit
    signal, for example) propagates to the caller.
    """
    wall_start = time.perf_counter()
    sink.phase("setup")
    if sim is None:
        sim = build_sim(vxs, config, seed)
    if before_load is not None:
        before_load()
    sink.phase("load")
    try:
        policy = load(source, vxs, guard, seed, code)
    except EpisodeInterrupt as interrupt:
        return _early_outcome(interrupt.reason, None, interrupt.message, seed, wall_start)
    except MemoryError:
        return _early_outcome("memory", None, "out of memory while loading the policy",
                              seed, wall_start)
    except PolicyLoadError as error:
        described = describe_error(error, "load", source)
        return _early_outcome("policy_error", described, None, seed, wall_start)
    return run_loaded(policy, sim, config, seed, sink, guard=guard, should_stop=should_stop,
                      source=source, wall_start=wall_start)


def _early_outcome(reason, error, note, seed, wall_start, output=""):
    summary = EpisodeSummary(
        success=False, steps=0, collisions_total=0, avg_command_len=0.0, path_len_est=0.0,
        coverage=None, time_to_goal=None, reasons=note or (error_line(error) if error else None),
        policy_summary={}, seed=seed, reason=reason,
        error={k: v for k, v in error.items() if k != "traceback"} if error else None,
        wall_time_s=time.perf_counter() - wall_start)
    return EpisodeOutcome(summary=summary, error=error, output=output)


def run_loaded(policy, sim: Sim, config: EpisodeConfig, seed: int, sink: EpisodeSink, *,
               guard=no_guard, should_stop=None, source: str | None = None,
               wall_start: float | None = None) -> EpisodeOutcome:
    """init → steps → finalize for an already loaded policy (see the module docstring)."""
    from bgen.runner import sandbox
    wall_start = time.perf_counter() if wall_start is None else wall_start
    vxs, agent, world = sim.vxs, sim.agent, sim.world
    delta, target = config.delta, sim.target
    # What the policy sees of the agent records every command it gives; the runner records the
    # intent act() returns. The commands of each step go into its log for the trusted replay.
    commands: list[dict] = []
    agent_view = sandbox.AgentView(agent, policy.intents, commands, policy.intent_type)
    helpers = sandbox.Helpers(vxs, policy.intents)
    stats = EpisodeStats()
    warnings: list[str] = []
    warned: set[str] = set()
    rejected = 0
    rejections: dict[str, int] = {}
    failure_steps: list[int] = []
    urgency_range: list[float] | None = None
    note_chars = 0

    def warn(message: str):
        if message not in warned and len(warned) < 20:
            warned.add(message)
            warnings.append(message)
            sink.warning(message)

    def policy_fault(error: BaseException, phase: str) -> _End:
        if isinstance(error, EpisodeInterrupt):  # the policy line it was stuck on helps
            described = describe_error(error, phase, source)
            where = f" (line {described['lineno']})" if described["lineno"] else ""
            return _End(error.reason, described, error.message + where)
        if isinstance(error, MemoryError):
            return _End("memory", describe_error(error, phase, source),
                        f"out of memory in {phase}()")
        return _End("policy_error", describe_error(error, phase, source))

    tracker = episode_tracker(config, sim)   # before init: the world as built
    render = RenderLink.connect(sim, config, warn) if config.render else None
    reason, error, note, time_to_goal = "max_steps", None, None, None
    note_chars = 0
    prev_pos = tuple(agent.get_pos())
    last_observed = prev_pos
    step = 0
    planned_failures = 0
    try:
        if policy.init is not None:
            try:
                with guard("init"):
                    init_config = policy_config(sim, config, seed)
                    policy.init(init_config)
                    init_config.clear()    # what the policy left in it dies inside the budget
            except BaseException as exc:  # noqa: B036 - panics and interrupts included
                raise policy_fault(exc, "init") from None
            check_not_moved(agent, prev_pos, "init")
        sink.phase("running")
        while step < config.max_steps:
            if should_stop is not None and should_stop():
                raise _End("terminated", None, "stopped from outside")
            frame_start = time.perf_counter()
            sim_t = step * delta

            # 1. act, then Replace / Push
            try:
                with guard("act"):
                    result = policy.act(sim_t, agent_view, world, sim.fw, sim.env, helpers)
                    intent, mode = split_act_result(policy, result)
                    result = None          # policy objects die here, inside the budget
                    if intent is not None:
                        described = policy.intents.describe(intent)
                        if described is None:
                            raise PolicyError(f"act() returned an ActionIntent that cannot be "
                                              f"replayed: {sandbox.UNRECORDED_INTENT}")
                        commands.append({"mode": mode, **described})
                    if step % GC_EVERY_STEPS == GC_EVERY_STEPS - 1:
                        gc.collect()       # finalisers of policy objects, inside the budget
            except BaseException as exc:  # noqa: B036
                raise policy_fault(exc, "act") from None
            check_not_moved(agent, prev_pos, "act")
            failures = helpers.planner_failure_count()
            if failures != planned_failures:
                planned_failures = failures
                note_step(failure_steps, step)
            if intent is not None:
                urgency_range = widened(urgency_range, intent_urgency(intent))
                try:
                    if mode == "Push":
                        agent.push_back_intent_py(intent)
                    else:
                        agent.perform_oneshot_py(intent)
                except Exception as exc:
                    rejected += 1
                    text = sandbox.exception_text(exc, 200)
                    if text in rejections or len(rejections) < 32:
                        rejections[text] = rejections.get(text, 0) + 1
                    warn(f"intent rejected: {sandbox.exception_text(exc, 500)}")
                except BaseException as exc:  # noqa: B036 - a panic on the policy's intent
                    raise policy_fault(exc, "apply_intent") from None

            # 2.–4. chase + dynamics, rendering, collisions (simulator faults are sim_error)
            try:
                if agent.get_action_py() is not None:
                    with guard("sim"):     # a hang here is the simulator's (sim_error)
                        chase = sim.chaser.step_chase_py(agent, delta)
                        sim.dynamics.update_agent_dynamics_py(agent, sim.env, chase, delta)
                if render is not None:
                    try:
                        render.step(sim_t)
                    except Exception as exc:
                        warn(f"renderer connection lost ({exc}); continuing headless")
                        render = None
                pos = tuple(agent.get_pos())
                collisions = len(world.collisions_py(list(pos), COLLISION_HALF_EXTENTS))
                coord = tuple(int(v) for v in agent.get_coord_py())
                action = agent.get_action_py()
                queue = action.get_intent_queue() if action is not None else []
                command_len = int(queue[0].len()) if queue else 0
            except EpisodeInterrupt:
                raise
            except MemoryError:
                raise _End("memory", None, "out of memory in the simulator step") from None
            except BaseException as exc:  # noqa: B036 - Rust panics are BaseException
                raise _End("sim_error", describe_error(exc, "sim", source)) from None

            step_commands = commands[:] or None     # those given in collect() go to the next
            commands.clear()
            if not all(map(math.isfinite, pos)) and not any(
                    c["mode"] in ("Hold", "SetPos") for c in step_commands or ()):
                raise _End("sim_error", None, diverged_note(step, delta))
            teleported = is_teleport(prev_pos, pos, delta, config.max_speed_mps)
            moved = distance(prev_pos, pos) if not teleported else 0.0
            dist = distance(target, pos)
            stats.add_step(moved, collisions, command_len, dist)
            reached = False
            if not teleported:   # graded from positions and counts only, never the policy's notes
                reached = tracker.observe(step, pos, stats.collisions_total)
                last_observed = pos

            # 5. collect, step log
            step_ctx = {"t": sim_t, "step": step, "agent_pos": pos, "agent_coord": coord,
                        "collisions_count": collisions, "distance_to_target": dist}
            try:
                with guard("collect"):
                    notes = clean_policy_log(sandbox.check_notes(policy.collect(step_ctx)))
                    step_ctx.clear()       # what the policy left in it dies inside the budget
            except EpisodeInterrupt:
                raise
            except MemoryError:
                raise _End("memory", None, "out of memory in collect()") from None
            except BaseException as exc:  # noqa: B036 - logged, not fatal
                described = describe_error(exc, "collect", source)
                notes = {"collect_error": error_line(described)}
                warn(f"collect() failed: {error_line(described)}")
            note_chars += notes_size(notes)
            if note_chars > MAX_EPISODE_NOTE_CHARS:
                notes = {}
                warn(f"collect() notes past {MAX_EPISODE_NOTE_CHARS} characters in this episode "
                     f"are dropped")
            sink.step(StepLog(step=step, t=sim_t, agent_pos=pos, agent_coord=coord, yaw=0.0,
                              command_len=command_len, collisions_count=collisions,
                              distance_to_target=dist,
                              frame_time_ms=(time.perf_counter() - frame_start) * 1000.0,
                              policy_log=notes, commands=step_commands).to_dict())
            step += 1
            check_not_moved(agent, pos, "collect")
            if teleported:
                raise _End("teleport", None, (
                    f"the agent jumped {distance(prev_pos, pos):.2f} m in one step of {delta} s "
                    f"(at most {max_step_distance(delta, config.max_speed_mps):.2f} m can be "
                    f"flown): set_pos/set_hold_py must not be used to move the agent"))
            if reached:
                time_to_goal = step * delta
                raise _End("success", None, f"reached the target at step {step - 1}"
                           if config.task_spec is None else f"every check held at step {step - 1}")
            prev_pos = pos
    except _End as end:
        reason, error, note = end.reason, end.error, end.note
    except EpisodeInterrupt as interrupt:  # raised between guarded calls (CPU limit, stop)
        reason, note = interrupt.reason, interrupt.message

    sim_time_s = step * delta
    wall_time_s = time.perf_counter() - wall_start
    checks = tracker.results(last_observed) if tracker.steps else [
        {"kind": c.kind, "passed": False, "score": 0.0, "account": f"{c.kind}: no step flown"}
        for c in tracker.resolved.checks]
    _, score = taskspec.summarize(checks)
    if reason == "max_steps" and config.task_spec is None:
        note = f"did not reach the target within {config.max_steps} steps " \
               f"(closest {stats.min_distance:.2f} m)" if stats.min_distance is not None else \
               f"ran {config.max_steps} steps"
    elif reason == "max_steps":
        note = f"ran {config.max_steps} steps; " + "; ".join(
            c["account"] for c in checks if not c["passed"])
    ep_ctx = {"success": reason == "success", "reason": reason, "steps": stats.steps,
              "collisions_total": stats.collisions_total,
              "avg_command_len": stats.avg_command_len, "path_len_est": stats.path_len,
              "coverage": None, "time_to_goal": time_to_goal, "reasons": note,
              "sim_time_s": sim_time_s, "wall_time_s": wall_time_s,
              "final_distance_to_target": stats.last_distance}
    policy_summary: dict[str, str] = {}
    if reason not in ("timeout", "memory", "terminated"):
        try:
            with guard("finalize"):
                policy_summary = clean_policy_log(sandbox.check_notes(policy.finalize(ep_ctx),
                                                                        "finalize"),
                                                  value_chars=MAX_SUMMARY_VALUE_CHARS)
                ep_ctx.clear()
                gc.collect()           # the policy's last cycles are collected in the budget
        except EpisodeInterrupt as interrupt:
            warn(f"finalize() did not finish: {interrupt.message}")
        except BaseException as exc:  # noqa: B036 - logged, not fatal
            warn(f"finalize() failed: {error_line(describe_error(exc, 'finalize', source))}")
    summary = EpisodeSummary(
        success=reason == "success", steps=stats.steps, collisions_total=stats.collisions_total,
        avg_command_len=stats.avg_command_len, path_len_est=stats.path_len, coverage=None,
        time_to_goal=time_to_goal, reasons=note or (error_line(error) if error else None),
        policy_summary=policy_summary, seed=seed, reason=reason,
        error={k: v for k, v in error.items() if k != "traceback"} if error else None,
        sim_time_s=sim_time_s, wall_time_s=wall_time_s,
        final_distance_to_target=stats.last_distance, min_distance_to_target=stats.min_distance,
        rejected_intents=rejected, start=list(sim.start), target=list(sim.target),
        checks=checks, score=score,
        rejections=rejections, planner_failures=helpers.planner_failures(),
        planner_failure_steps=list(failure_steps), urgency=urgency_range)
    output = _policy_output(policy)
    return EpisodeOutcome(summary=summary, error=error, output=output, warnings=warnings)


FAILURE_STEPS_KEPT = 10     # first and last steps with a planner failure kept as evidence


def diverged_note(step: int, delta: float) -> str:
    """Why an episode whose dynamics gave a non-finite position ended (``sim_error``)."""
    return (f"the simulation diverged at step {step}: the agent's position is no longer finite "
            f"(a step of {delta:g} s may be too long for the dynamics; 0.01 s is the default)")


def note_step(steps: list[int], step: int) -> None:
    """Keep the first ``FAILURE_STEPS_KEPT`` and the latest ``FAILURE_STEPS_KEPT`` steps."""
    if len(steps) >= 2 * FAILURE_STEPS_KEPT:
        del steps[FAILURE_STEPS_KEPT]
    steps.append(step)


def intent_urgency(intent) -> float | None:
    """The urgency an intent was built with, when the backend tells: the embedded backend keeps
    it on the object; voxelsim's ``ActionIntent`` has no Python getter for it (``py.rs``)."""
    value = getattr(intent, "_urgency", None)
    return float(value) if isinstance(value, float) and math.isfinite(value) else None


def widened(bounds: list[float] | None, value: float | None) -> list[float] | None:
    """[min, max] grown to include ``value`` (None leaves it as it is)."""
    if value is None:
        return bounds
    if bounds is None:
        return [value, value]
    return [min(bounds[0], value), max(bounds[1], value)]


def _policy_output(policy) -> str:
    try:
        text = policy.output()
    except Exception:
        return ""
    return text if isinstance(text, str) else ""
