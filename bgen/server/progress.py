"""What runs tell clients, without I/O: event shapes, step decimation, render channels and ports.

The loop and the runner emit flat events (``{"type": "step", "seed": 3, "step": 120, "t": ...}``);
the reference's clients read ``message.step.t`` and ``message.summary.success``. ``to_wire``
nests the payload under ``step`` / ``summary`` and keeps the envelope (type, id, ts, iteration,
seed, ...) on top, so both kinds of client are served by one shape.
"""

from __future__ import annotations

import math

# Top-level keys of every progress message; anything else of a step / episode_summary event
# is its payload.
ENVELOPE = ("type", "id", "ts", "run_id", "iteration", "candidate", "phase", "seed")

FINAL_TYPES = ("done", "error", "terminated")

# Event types that are never dropped for a slow subscriber (only steps are).
DROPPABLE_TYPES = ("step",)


def to_wire(event: dict) -> dict:
    """The client-facing shape of a loop/runner event (a new dict; the input is not changed)."""
    kind = event.get("type")
    if kind in ("critique", "holdout") and "critique" not in event and "text" in event:
        return {**event, "critique": event["text"]}     # the reference's field name
    nest = {"step": "step", "episode_summary": "summary"}.get(kind)
    if nest is None or isinstance(event.get(nest), dict):
        return dict(event)
    wire = {key: event[key] for key in ENVELOPE if key in event}
    wire[nest] = {key: value for key, value in event.items() if key not in ENVELOPE or key == "seed"}
    return wire


def episode_key(event: dict) -> tuple:
    """Which episode an event belongs to (steps are decimated per episode)."""
    return event.get("iteration"), event.get("candidate"), event.get("phase"), event.get("seed")


class StepThrottle:
    """Lets at most ``hz`` step events per wall-clock second through, per episode.

    A step that is held back is kept as the episode's pending step; ``flush(key)`` (called when
    the episode's summary arrives) returns it, so the last step of an episode always goes out.
    ``hz <= 0`` lets every step through.
    """

    def __init__(self, hz: float):
        self.min_interval = 1.0 / hz if hz > 0 else 0.0
        self._last_sent: dict[tuple, float] = {}
        self._pending: dict[tuple, dict] = {}

    def offer(self, key: tuple, event: dict, now: float) -> dict | None:
        """The event if it may go out now, else None (and it becomes the pending step)."""
        last = self._last_sent.get(key)
        if last is None or now - last >= self.min_interval:
            self._last_sent[key] = now
            self._pending.pop(key, None)
            return event
        self._pending[key] = event
        return None

    def flush(self, key: tuple) -> dict | None:
        """The episode ended: its held-back last step (if any); forget the episode."""
        self._last_sent.pop(key, None)
        return self._pending.pop(key, None)

    def flush_all(self) -> list[dict]:
        pending = sorted(self._pending.values(), key=lambda e: e.get("id", 0))
        self._pending.clear()
        self._last_sent.clear()
        return pending


def timing(sim_time_s: float, wall_time_s: float) -> dict:
    """The reference's ``done.timing``: simulated vs wall time of the episodes, and their ratio."""
    speedup = sim_time_s / wall_time_s if wall_time_s > 0 else None
    return {"sim_time_s": sim_time_s, "wall_time_s": wall_time_s, "speedup_x": speedup}


def success_rate(aggregate) -> float:
    try:
        value = float((aggregate or {}).get("success_rate", 0.0))
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) else 0.0


def best_iteration(iterations: list[dict]) -> int | None:
    """The iteration with the highest success rate; the later one on a tie (it was refined more)."""
    best = None
    for entry in iterations:
        if best is None or success_rate(entry.get("aggregate")) >= success_rate(best.get("aggregate")):
            best = entry
    return None if best is None else best.get("iteration")


def describe(event: dict) -> str:
    """One log line's worth of an event."""
    kind = event.get("type")
    if kind == "iteration":
        return f"iteration {event.get('iteration')}"
    if kind == "policy":
        code = event.get("code") or ""
        return (f"policy iteration={event.get('iteration')} source={event.get('source', 'generated')} "
                f"lines={code.count(chr(10)) + 1 if code else '?'}")
    if kind == "episode_summary":
        summary = event.get("summary") or {}
        return (f"episode seed={event.get('seed')} success={summary.get('success')} "
                f"reason={summary.get('reason')} steps={summary.get('steps')}")
    if kind == "critique":
        return f"critique iteration={event.get('iteration')} success_rate={success_rate(event.get('aggregate')):.2f}"
    if kind in ("warning", "error"):
        return f"{kind}: {event.get('message')}"
    if kind in ("done", "terminated"):
        t = event.get("timing") or {}
        speedup = t.get("speedup_x")
        return (f"{kind} best_iteration={event.get('best_iteration')} "
                f"concluded_early={event.get('concluded_early')} sim={t.get('sim_time_s', 0):.2f}s "
                f"wall={t.get('wall_time_s', 0):.2f}s speedup={'-' if speedup is None else f'{speedup:.1f}x'}")
    if kind == "status":
        position = event.get("position")
        return f"status {event.get('status')}" + (f" (position {position})" if position else "")
    if kind == "step":
        step = event.get("step") or {}
        return f"step seed={event.get('seed')} t={step.get('t')}"
    return str(kind)


# ---------------------------------------------------------------- render channels and ports

# voxelsim's RendererClient: world, agents, then one port per POV stream counting up from
# 8090 (world view) and 9090 (agents view).
DEFAULT_RENDER_PORTS = (8080, 8081, 8090, 9090)
# Each further rendered run gets the block shifted by this much; ten blocks fit before the
# POV-world ports of a block would reach the POV-agents ports of the first.
PORT_BLOCK_STRIDE = 100
PORT_BLOCKS = 10


def render_channels(ports: tuple[int, int, int, int], pov_count: int = 1) -> list[tuple[str, int]]:
    """(channel, port) for every stream of one run."""
    world, agents, pov_world, pov_agents = ports
    channels = [("world", world), ("agents", agents)]
    for i in range(pov_count):
        channels.append((f"pov_world_{i}", pov_world + i if pov_world else 0))
        channels.append((f"pov_agents_{i}", pov_agents + i if pov_agents else 0))
    return channels


def port_block(base: tuple[int, int, int, int], index: int) -> tuple[int, int, int, int]:
    """Block ``index`` of renderer ports; a base of zeros means OS-chosen ports (one block)."""
    if not 0 <= index < PORT_BLOCKS:
        raise ValueError(f"port block: expects 0..{PORT_BLOCKS - 1}, actual: {index}")
    return tuple(port + index * PORT_BLOCK_STRIDE if port else 0 for port in base)
