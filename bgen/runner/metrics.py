"""Pure per-step and per-episode measures: distances, path length, teleport check, log caps.

Nothing here touches the simulator, a file or a process; the episode loop feeds it numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Caps on what a policy can put in a step log or its episode summary (per step / episode).
MAX_LOG_KEYS = 32
MAX_LOG_KEY_CHARS = 64
MAX_LOG_VALUE_CHARS = 512
MAX_SUMMARY_VALUE_CHARS = 4000
#: Most characters of step notes one episode keeps (keys and values); later notes are dropped.
MAX_EPISODE_NOTE_CHARS = 1_000_000


def distance(a, b) -> float:
    """Euclidean distance between two 3-vectors."""
    return math.sqrt((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2)


def max_step_distance(delta: float, max_speed_mps: float) -> float:
    """Farthest the agent may move in one step of ``delta`` seconds under the dynamics."""
    return max_speed_mps * delta + 1e-6


def is_teleport(before, after, delta: float, max_speed_mps: float) -> bool:
    """True when ``before`` → ``after`` in one step is faster than the dynamics can fly.

    ``set_pos``/``set_hold_py`` move the agent instantly; a policy that calls them would
    otherwise "reach" any target. A NaN position also counts: it cannot be flown to.
    """
    jump = distance(before, after)
    return not jump <= max_step_distance(delta, max_speed_mps)


@dataclass
class EpisodeStats:
    """Running totals of one episode; ``add_step`` is called once per simulated step."""

    steps: int = 0
    collisions_total: int = 0
    command_len_sum: int = 0
    path_len: float = 0.0
    last_distance: float | None = None
    min_distance: float | None = None

    def add_step(self, moved: float, collisions: int, command_len: int,
                 dist_to_target: float | None) -> None:
        self.steps += 1
        self.collisions_total += collisions
        self.command_len_sum += command_len
        self.path_len += moved
        self.last_distance = dist_to_target
        if dist_to_target is not None and (self.min_distance is None
                                           or dist_to_target < self.min_distance):
            self.min_distance = dist_to_target

    @property
    def avg_command_len(self) -> float:
        return self.command_len_sum / self.steps if self.steps else 0.0

    def to_dict(self) -> dict:
        return {"steps": self.steps, "collisions_total": self.collisions_total,
                "command_len_sum": self.command_len_sum, "path_len": self.path_len,
                "last_distance": self.last_distance, "min_distance": self.min_distance}

    @classmethod
    def from_dict(cls, data: dict) -> "EpisodeStats":
        """Rebuild from a worker's progress header; bad values fall back to zeros/None."""
        stats = cls()
        for name in ("steps", "collisions_total", "command_len_sum"):
            value = data.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                setattr(stats, name, value)
        for name in ("path_len", "last_distance", "min_distance"):
            value = data.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                setattr(stats, name, float(value))
        return stats


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _as_text(value) -> str:
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception as error:  # a policy object whose __str__ raises
        return f"<unprintable {type(value).__name__}: {type(error).__name__}>"


def clean_policy_log(value, *, what: str = "collect()",
                     value_chars: int = MAX_LOG_VALUE_CHARS) -> dict[str, str]:
    """Turn what ``collect``/``finalize`` returned into a small ``dict[str, str]``.

    ``None`` is an empty log. Anything not a dict becomes ``{"<what>_error": ...}`` so the
    contract breach is visible in the log instead of crashing the episode. Keys and values
    are converted with ``str`` and clipped; at most ``MAX_LOG_KEYS`` keys are kept.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        name = what.split("(")[0]
        return {f"{name}_error": f"{what} must return a dict of str to str, "
                                 f"actual: {type(value).__name__}"}
    clean: dict[str, str] = {}
    for index, (key, item) in enumerate(value.items()):
        if index >= MAX_LOG_KEYS:
            clean["_truncated"] = f"{len(value) - MAX_LOG_KEYS} more keys dropped"
            break
        clean[_clip(_as_text(key), MAX_LOG_KEY_CHARS)] = _clip(_as_text(item), value_chars)
    return clean


def notes_size(notes: dict[str, str]) -> int:
    """Characters in a cleaned step log (keys and values)."""
    return sum(len(key) + len(value) for key, value in notes.items())
