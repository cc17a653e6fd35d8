"""The run's event log: ``events.jsonl``, one JSON object a line, the replay source of a run.

Every event gets a run-unique, increasing integer ``id`` and a ``ts`` (Unix seconds) when
appended. Step events are many (thousands per second at full simulation speed): on disk they
are thinned to at most ``steps_per_second`` per episode per wall-clock second — every step is
in the episode's ``steps.<seed>.jsonl`` anyway. A step that is not stored still gets its id
(so ids have gaps where steps were thinned) and is returned to the caller for live delivery.

Reopening an existing file continues its id sequence, so a restarted server appends after
what it already recorded.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

DEFAULT_STEPS_PER_SECOND = 20

# An iteration's policy file: the user's own policy as given, or one the LLM wrote or repaired.
GIVEN_POLICY_FILE = "policy.given.py"
GENERATED_POLICY_FILE = "policy.generated.py"
POLICY_FILES = (GIVEN_POLICY_FILE, GENERATED_POLICY_FILE)


def policy_file_name(source: str) -> str:
    """The file name of a policy whose ``source`` is ``given``, ``generated`` or ``repair``."""
    return GIVEN_POLICY_FILE if source == "given" else GENERATED_POLICY_FILE


def iteration_policy_file(iteration_dir: Path) -> Path | None:
    """The policy file an iteration directory holds (given or generated), or None."""
    for name in POLICY_FILES:
        if (Path(iteration_dir) / name).is_file():
            return Path(iteration_dir) / name
    return None


def _episode_key(event: dict) -> tuple:
    return (event.get("iteration"), event.get("candidate"), event.get("phase"), event.get("seed"))


#: A stored step event longer than this loses its ``commands`` and ``policy_log`` (the
#: episode's steps file keeps them): a policy giving dozens of long intents a step would
#: otherwise write megabytes of events a second.
STEP_EVENT_MAX_BYTES = 4096
_BULKY_STEP_FIELDS = ("commands", "policy_log")


def stored_line(event: dict) -> str:
    """``event`` as the JSON line the log stores: a step event over ``STEP_EVENT_MAX_BYTES``
    without its bulky fields, marked ``"trimmed": [names]``."""
    line = json.dumps(event, default=str)
    if event.get("type") != "step" or len(line) <= STEP_EVENT_MAX_BYTES:
        return line
    trimmed = [name for name in _BULKY_STEP_FIELDS if name in event]
    slim = {k: v for k, v in event.items() if k not in trimmed}
    return json.dumps({**slim, "trimmed": trimmed}, default=str)


class EventLog:
    """Append-only, thread-safe event log backed by one JSON-lines file."""

    def __init__(self, path: Path | str, *, steps_per_second: int = DEFAULT_STEPS_PER_SECOND,
                 clock=time.time):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.steps_per_second = steps_per_second
        self._clock = clock
        # Serialises id assignment and file writes: appends come from the run thread, worker
        # event pumps and HTTP handler threads.
        self._lock = threading.Lock()
        self._next_id = self._last_id_on_disk() + 1
        # Per episode: [window start (whole second), steps stored in that window].
        self._windows: dict[tuple, list] = {}
        self._file = self.path.open("a", encoding="utf-8")

    def _last_id_on_disk(self) -> int:
        if not self.path.exists():
            return 0
        last = 0
        with self.path.open("r", encoding="utf-8") as handle:
            for line in handle:
                try:
                    last = max(last, int(json.loads(line).get("id", 0)))
                except (ValueError, TypeError, AttributeError):
                    continue   # a torn last line after a crash
        return last

    def _keep_step(self, event: dict, now: float) -> bool:
        key = _episode_key(event)
        second = int(now)
        window = self._windows.get(key)
        if window is None or window[0] != second:
            self._windows[key] = [second, 1]
            return True
        if window[1] < self.steps_per_second:
            window[1] += 1
            return True
        return False

    def append(self, event: dict) -> dict:
        """Store ``event`` (steps thinned) and return a copy carrying ``id`` and ``ts``."""
        with self._lock:
            now = self._clock()
            stamped = {**event, "id": self._next_id, "ts": round(now, 3)}
            self._next_id += 1
            if stamped.get("type") == "episode_summary":
                self._windows.pop(_episode_key(stamped), None)
            if stamped.get("type") != "step" or self._keep_step(stamped, now):
                if not self._file.closed:
                    self._file.write(stored_line(stamped) + "\n")
                    self._file.flush()
            return stamped

    def read(self, since_id: int | None = None, include_steps: bool = False) -> list[dict]:
        """Stored events with ``id > since_id`` (all when None), oldest first."""
        with self._lock:
            if not self._file.closed:
                self._file.flush()
        events = []
        with self.path.open("r", encoding="utf-8") as handle:
            for line in handle:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if since_id is not None and event.get("id", 0) <= since_id:
                    continue
                if not include_steps and event.get("type") == "step":
                    continue
                events.append(event)
        return events

    @property
    def last_id(self) -> int:
        with self._lock:
            return self._next_id - 1

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
