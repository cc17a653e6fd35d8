"""Runs on disk: ``runs/<run_id>/run.json``, ``events.jsonl`` and the loop's ``iter_<n>/`` folders.

run.json is rewritten whole (write to a temporary file, then ``os.replace``) so a reader or a
crash never sees half of it. The store keeps nothing in memory: after a restart every finished
run answers exactly as before.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import uuid
from pathlib import Path

from bgen.errors import NotFound
from bgen.server.validation import check_run_id

log = logging.getLogger("bgen.server")

RUN_FILE = "run.json"
EVENTS_FILE = "events.jsonl"
ITER_DIR = re.compile(r"iter_(\d+)")

from bgen.orchestrator.runlog import EventLog, iteration_policy_file


class RunStore:
    """The ``runs/`` directory. Methods may be called from any thread."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def new_run_id(self) -> str:
        while True:
            run_id = uuid.uuid4().hex[:12]
            try:
                (self.root / run_id).mkdir()
                return run_id
            except FileExistsError:
                continue

    def create(self, run_id: str) -> Path:
        """Make ``runs/<run_id>/`` for a new run (FileExistsError if it exists)."""
        path = self.run_dir(run_id)
        path.mkdir()
        return path

    def run_dir(self, run_id: str) -> Path:
        return self.root / check_run_id(run_id)

    def exists(self, run_id: str) -> bool:
        try:
            return (self.run_dir(run_id) / RUN_FILE).is_file()
        except NotFound:
            return False

    def save(self, record: dict) -> None:
        path = self.run_dir(record["run_id"]) / RUN_FILE
        tmp = path.with_name(f".{RUN_FILE}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, path)

    def load(self, run_id: str) -> dict:
        path = self.run_dir(run_id) / RUN_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFound(f"no run {run_id!r}", field="run_id") from None

    def records(self) -> list[dict]:
        """Every readable run.json, newest first; a damaged one is logged and skipped."""
        records = []
        for path in self.root.glob(f"*/{RUN_FILE}"):
            if path.parent.name.startswith("."):      # a folder being deleted
                continue
            try:
                records.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                log.warning("skipping unreadable %s: %s", path, exc)
        records.sort(key=lambda r: r.get("created", 0), reverse=True)
        return records

    def delete(self, run_id: str) -> None:
        """Remove ``runs/<run_id>/``: renamed aside first (one atomic step, so no listing sees
        half a run), then deleted. NotFound if there is no such run."""
        run_dir = self.run_dir(run_id)
        aside = self.root / f".deleting-{run_id}-{uuid.uuid4().hex[:8]}"
        try:
            os.replace(run_dir, aside)
        except FileNotFoundError:
            raise NotFound(f"no run {run_id!r}", field="run_id") from None
        shutil.rmtree(aside, ignore_errors=True)

    def read_events(self, run_id: str, since_id: int | None = None) -> list[dict]:
        """A finished run's stored events with ``id > since_id`` (all when None), oldest first,
        read without opening the log for writing (which would make the folder again if the
        run was just deleted); NotFound when the run is gone."""
        events = []
        try:
            with (self.run_dir(run_id) / EVENTS_FILE).open("r", encoding="utf-8") as handle:
                for line in handle:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue        # a torn last line after a crash
                    if isinstance(event, dict) and (since_id is None or event.get("id", 0) > since_id):
                        events.append(event)
        except FileNotFoundError:
            raise NotFound(f"no run {run_id!r}", field="run_id") from None
        return events

    def event_log(self, run_id: str) -> EventLog:
        """The run's events.jsonl, open for appending: close it (or use ``with``) when done."""
        return EventLog(self.run_dir(run_id) / EVENTS_FILE)

    def iterations_with_code(self, run_id: str) -> list[int]:
        run_dir = self.run_dir(run_id)
        found = []
        for child in run_dir.iterdir() if run_dir.is_dir() else ():
            match = ITER_DIR.fullmatch(child.name)
            if match and iteration_policy_file(child) is not None:
                found.append(int(match.group(1)))
        return sorted(found)

    def policy_code(self, run_id: str, iteration: int | None = None, best: bool = False) -> tuple[int, str]:
        """(iteration, code): the latest policy, iteration ``iteration``'s, or the best one's."""
        record = self.load(run_id)
        if best:
            iteration = record.get("best_iteration")
            if iteration is None:
                raise NotFound(f"run {run_id} has no best iteration yet", field="best")
        if iteration is None:
            available = self.iterations_with_code(run_id)
            if not available:
                raise NotFound(f"run {run_id} has no policy code yet", field="run_id")
            iteration = available[-1]
        path = iteration_policy_file(self.run_dir(run_id) / f"iter_{iteration}")
        try:
            if path is None:
                raise FileNotFoundError(iteration)
            return iteration, path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFound(f"run {run_id} has no policy for iteration {iteration}",
                           field="iteration") from None
