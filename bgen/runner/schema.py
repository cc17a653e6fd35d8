"""What an episode writes: one ``StepLog`` per simulated step, one ``EpisodeSummary`` per episode.

The field names and meanings follow the reference runner (``bgen/runner/schema.py`` of
Merlotec/vxs) so that consumers of its files keep working; ``step`` on ``StepLog`` and
``seed``, ``reason``, ``error``, ``sim_time_s``, ``wall_time_s`` and the distance fields on
``EpisodeSummary`` are ours.

Files of one episode (all written by the parent process, never by the worker):

    ep_<seed>/steps.<seed>.jsonl    one StepLog per line
    ep_<seed>/summary.<seed>.json   the EpisodeSummary
    ep_<seed>/summary.<seed>.txt    the policy's own summary text (``finalize()["summary"]``)
    ep_<seed>/trace.<seed>.json     failed episodes only: last steps, error, traceback, output
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

#: Why an episode ended. ``success`` and ``max_steps`` are normal ends; the rest are failures.
REASONS = (
    "success",        # every check of the task spec held (default: within 1.0 m of the target)
    "max_steps",      # ran out of steps without reaching the target
    "policy_error",   # the policy raised (or broke the act() contract), failed to load or init
    "timeout",        # an act() call, the CPU limit or the episode's wall-clock deadline ran out
    "memory",         # the worker ran out of its address-space limit
    "crashed",        # the worker died (signal or exit) without reporting a result
    "terminated",     # stopped from outside (stop_event, Ctrl-C)
    "teleport",       # the agent moved farther in one step than the dynamics allow
    "sim_error",      # the simulator itself failed (a panic or exception outside policy code)
    "lost",           # the executor lost the episode (its Dask worker died twice, or its task
                      # failed), or the sandbox host died twice before its process started
    "tampered",       # the reported flight disagrees with the trusted replay of its commands
)
FAILURE_REASONS = frozenset(REASONS) - {"success", "max_steps"}

#: Distance (m) to the target that counts as reaching it; reaching it ends the episode.
SUCCESS_RADIUS = 1.0


@dataclass
class StepLog:
    """One simulated step, as a line of ``steps.<seed>.jsonl`` and a ``step`` event.

    ``t`` is simulated time in seconds (``step * delta``), not wall time: episodes run at
    full speed, so wall time says nothing about the flight. ``yaw`` stays 0.0 as in the
    reference (voxelsim exposes no getter for the agent's yaw). ``frame_time_ms`` is the wall
    time this step took, policy included.
    """

    step: int
    t: float
    agent_pos: tuple[float, float, float]
    agent_coord: tuple[int, int, int]
    yaw: float
    command_len: int
    collisions_count: int
    distance_to_target: float | None
    frame_time_ms: float
    policy_log: dict[str, str] = field(default_factory=dict)
    #: What the agent was told before this step's dynamics, in order (None: nothing):
    #: ``{"mode": "Replace"|"Push", "urgency", "yaw", "moves": [MoveDir codes]}``,
    #: ``{"mode": "Hold", "coord", "yaw"}`` or ``{"mode": "SetPos", "pos"}``. The trusted
    #: replay (``bgen.runner.replay``) flies these.
    commands: list[dict] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields in order, shallow: every value is immutable or built fresh per step, and
        ``asdict``'s recursive copy cost about 12 µs, a third of a simulated step."""
        return dict(self.__dict__)


@dataclass
class EpisodeSummary:
    """The outcome of one episode (``summary.<seed>.json`` and the ``episode_summary`` event).

    ``error`` is ``None`` or ``{"phase", "type", "message", "lineno"}`` where phase is one of
    load, init, act, apply_intent, collect, finalize, sim, worker; the policy-only traceback is
    in ``trace.<seed>.json``. ``reasons`` is a one-line explanation of ``reason`` in words.
    """

    success: bool
    steps: int
    collisions_total: int
    avg_command_len: float
    path_len_est: float | None
    coverage: float | None
    time_to_goal: float | None
    reasons: str | None
    policy_summary: dict[str, str]
    seed: int = 0
    reason: str = "max_steps"
    error: dict[str, Any] | None = None
    sim_time_s: float = 0.0
    wall_time_s: float = 0.0
    cpu_time_s: float | None = None         # the policy process's CPU time (user + system, s),
                                            # measured by the sandbox host when it reaped it
    final_distance_to_target: float | None = None
    min_distance_to_target: float | None = None
    rejected_intents: int = 0
    start: list[int] | None = None          # effective start cell (after lifting)
    target: list[float] | None = None       # effective target
    checks: list[dict] | None = None        # per task-spec check: kind, passed, score, account
    score: float | None = None              # mean of the checks' scores, 0..1
    rejections: dict[str, int] = field(default_factory=dict)        # agent's refusal text -> count
    planner_failures: dict[str, int] = field(default_factory=dict)  # helpers.plan_to error -> count
    planner_failure_steps: list[int] = field(default_factory=list)  # first 10 + last 10 such steps
    urgency: list[float] | None = None      # [min, max] urgency of intents act() returned, when
                                            # the backend tells (the embedded one does)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EpisodeSummary":
        """Rebuild from a dict that crossed a process boundary, checking every field's type.

        Unknown keys are dropped; a missing or mistyped field raises ``ValueError`` naming it,
        so a worker cannot smuggle arbitrary shapes into the files the parent writes.
        """
        if not isinstance(data, dict):
            raise ValueError(f"summary: expects an object, actual: {type(data).__name__}")
        values = {}
        for f in fields(cls):
            if f.name not in data:
                if f.default is not MISSING or f.default_factory is not MISSING:
                    continue
                raise ValueError(f"summary: missing field {f.name!r}")
            values[f.name] = _checked(f.name, data[f.name])
        if values.get("reason", "max_steps") not in REASONS:
            raise ValueError(f"summary.reason: expects one of {', '.join(REASONS)}, "
                             f"actual: {values.get('reason')!r}")
        return cls(**values)


_NUMBER_OR_NONE = ("cpu_time_s", "path_len_est", "coverage", "time_to_goal", "final_distance_to_target",
                   "min_distance_to_target", "score")
MAX_CHECKS = 32
MAX_ACCOUNT_CHARS = 300


def _checked(name: str, value: Any) -> Any:
    def fail(expected: str):
        raise ValueError(f"summary.{name}: expects {expected}, actual: {type(value).__name__}")

    if name == "success":
        if not isinstance(value, bool):
            fail("a boolean")
    elif name in ("steps", "collisions_total", "seed", "rejected_intents"):
        if isinstance(value, bool) or not isinstance(value, int):
            fail("an integer")
    elif name in ("avg_command_len", "sim_time_s", "wall_time_s"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail("a number")
        value = float(value)
    elif name in _NUMBER_OR_NONE:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            fail("a number or null")
    elif name in ("reasons", "reason"):
        if value is not None and not isinstance(value, str):
            fail("a string")
    elif name == "policy_summary":
        if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            fail("an object of strings")
    elif name in ("start", "target"):
        if value is not None and not (isinstance(value, list) and len(value) == 3 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            fail("three numbers or null")
    elif name == "error":
        if value is not None and not isinstance(value, dict):
            fail("an object or null")
    elif name == "checks":
        if value is not None:
            if not isinstance(value, list) or len(value) > MAX_CHECKS or not all(
                    isinstance(c, dict) and isinstance(c.get("kind"), str)
                    and isinstance(c.get("passed"), bool) and isinstance(c.get("account"), str)
                    and isinstance(c.get("score"), (int, float))
                    and not isinstance(c.get("score"), bool) for c in value):
                fail("a list of {kind, passed, score, account} or null")
            value = [{"kind": c["kind"][:32], "passed": c["passed"],
                      "score": float(c["score"]), "account": c["account"][:MAX_ACCOUNT_CHARS]}
                     for c in value]
    elif name in ("rejections", "planner_failures"):
        if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
                for k, v in value.items()):
            fail("an object of counts")
    elif name == "planner_failure_steps":
        if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            fail("a list of integers")
    elif name == "urgency":
        if value is not None and not (isinstance(value, list) and len(value) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            fail("two numbers or null")
    return value
