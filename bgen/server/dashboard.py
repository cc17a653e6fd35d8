"""What the browser dashboard reads: static files, an episode's flight, a world's cells, policy diffs.

Pure data builders over the run folder and the scenarios; the server's handlers only parse
the path, call one of these and answer. Shapes (every length in voxels = metres, z down: a
negative z is up):

    static_file(rel)                  -> StaticFile(body bytes, content_type)  GET / and /static/...
    episode_view(run_dir, it, seed)   -> {"summary", "checks", "track", "start", "target", ...}
    world_view(vxs, scenario, seed)   -> {"count", "coords": [x0, y0, z0, ...], "bits": [...], ...}
    code_diff(run_dir, from, to)      -> {"from", "to", "diff": unified text, "added", "removed"}

Episode files are the runner's (``iter_<n>/ep_<seed>/steps.<seed>.jsonl``,
``summary.<seed>.json``; with several candidates the chosen one's under ``cand_<k>/``, named by
``iter_<n>/chosen.json``; holdout episodes under ``holdout/``), see bgen/runner/schema.py.
"""

from __future__ import annotations

import difflib
import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bgen.errors import NotFound
from bgen.server.validation import query_int, query_params, show

STATIC_ROOT = Path(__file__).resolve().parent / "static"
INDEX_FILE = "index.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
# Only these kinds of file are served; a LICENSE (no suffix) goes out as plain text.
LICENSE_NAMES = ("LICENSE",)

MAX_TRACK_POINTS = 2000          # a decimated track keeps at most this many steps (first and last always)
MAX_DIFF_CONTEXT = 3             # unified diff context lines
WORLD_CACHE_SIZE = 8             # worlds kept built (scenario, seed); the standard one is ~1 MB of JSON
MAX_WORLD_SEED = 2**32 - 1

# Cell bits of voxelsim's `Cell` bitflags (voxelsim/src/env.rs), as the embedded world names them.
FILLED, SPARSE, GROUND, INTEREST = 0x10, 0x20, 0x40, 0x100


# ============================================================================ static files

@dataclass(frozen=True)
class StaticFile:
    """One file of the dashboard, ready to send."""

    body: bytes
    content_type: str


def static_file(rel: str, root: Path = STATIC_ROOT) -> StaticFile:
    """The file ``rel`` (a path under ``static/``, e.g. ``"app.js"``, ``"vendor/three/LICENSE"``).

    NotFound for anything missing, a directory, an unknown kind of file, or a path that would
    leave ``root`` (``..``, an absolute path, a backslash, a NUL, a symlink out of it).
    """
    if not rel or "\\" in rel or "\0" in rel or rel.startswith("/"):
        raise NotFound(f"no static file {show(rel)}", field="path")
    parts = rel.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise NotFound(f"no static file {show(rel)}", field="path")
    root = root.resolve()
    path = (root / rel).resolve()
    if root not in path.parents or not path.is_file():
        raise NotFound(f"no static file {show(rel)}", field="path")
    suffix = path.suffix.lower()
    if suffix in CONTENT_TYPES:
        content_type = CONTENT_TYPES[suffix]
    elif path.name in LICENSE_NAMES:
        content_type = CONTENT_TYPES[".txt"]
    else:
        raise NotFound(f"no static file {show(rel)}", field="path")
    return StaticFile(path.read_bytes(), content_type)


def json_document(body: bytes) -> StaticFile:
    """A JSON document serialized ahead of time (a cached world), sent as it is."""
    return StaticFile(body, CONTENT_TYPES[".json"])


def index_page(root: Path = STATIC_ROOT) -> StaticFile:
    """``GET /``: the dashboard's page."""
    return static_file(INDEX_FILE, root)


# ============================================================================ runs

SCORE_FIELDS = ("score", "mean_score", "graded_score")


def graded_score(aggregate) -> float | None:
    """An aggregate's mean graded score in [0, 1] when it has one (the task spec's checks give
    one; a run without them has none): ``score``, ``mean_score`` or ``graded_score``, as a
    number or a ``{"mean": ...}`` statistic. None otherwise."""
    if not isinstance(aggregate, dict):
        return None
    for name in SCORE_FIELDS:
        value = aggregate.get(name)
        if isinstance(value, dict):
            value = value.get("mean")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


# ============================================================================ episodes

def parse_iteration(text: str) -> int | str:
    """A path's iteration: a number, or ``holdout`` for the best policy's holdout episodes."""
    if text == "holdout":
        return text
    if not text.isdigit() or len(text) > 6:
        raise NotFound(f"iteration: expects a number or holdout, actual: {show(text)}",
                       field="iteration")
    return int(text)


def parse_seed(text: str) -> int:
    if not text.isdigit() or int(text) > MAX_WORLD_SEED:
        raise NotFound(f"seed: expects an integer in 0..{MAX_WORLD_SEED}, actual: {show(text)}",
                       field="seed")
    return int(text)


def episode_dir(run_dir: Path, iteration: int | str, seed: int) -> tuple[Path, int | None]:
    """(folder of the episode's files, candidate or None) of the iteration's chosen policy.

    NotFound naming the iteration or the seed when the run has no such episode (yet).
    """
    base = run_dir / ("holdout" if iteration == "holdout" else f"iter_{iteration}")
    if not base.is_dir():
        raise NotFound(f"run has no iteration {iteration}", field="iteration")
    name = f"ep_{seed}"
    if (base / name).is_dir():
        return base / name, None
    candidate = None
    try:
        candidate = json.loads((base / "chosen.json").read_text(encoding="utf-8")).get("candidate")
    except (OSError, ValueError, AttributeError):
        pass
    if isinstance(candidate, int) and (base / f"cand_{candidate}" / name).is_dir():
        return base / f"cand_{candidate}" / name, candidate
    found = sorted(base.glob(f"cand_*/{name}"))
    if found:
        return found[0], int(found[0].parent.name.split("_", 1)[1])
    raise NotFound(f"iteration {iteration} has no episode with seed {seed}", field="seed")


def read_json_file(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            count += block.count(b"\n")
    return count


def decimated_track(path: Path, max_points: int = MAX_TRACK_POINTS) -> dict:
    """Every k-th step of ``steps.<seed>.jsonl`` (first and last always), as parallel arrays.

    ``{"steps": N stored, "stride": k, "step": [...], "t": [s], "pos": [x0, y0, z0, ...] (m),
    "speed": [m/s over the interval before each kept step], "collisions": [...],
    "distance": [m to the target or null]}``. A torn last line is skipped.
    """
    track = {"steps": 0, "stride": 1, "step": [], "t": [], "pos": [], "speed": [],
             "collisions": [], "distance": []}
    if not path.is_file():
        return track
    total = count_lines(path)
    stride = max(1, math.ceil(total / max(2, max_points - 1)))
    track["steps"], track["stride"] = total, stride
    last_line = None
    previous = None
    with path.open("r", encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            if index % stride and index != total - 1:
                last_line = line
                continue
            last_line = None
            previous = _add_step(track, line, previous)
    if last_line is not None:
        _add_step(track, last_line, previous)
    return track


def _add_step(track: dict, line: str, previous):
    try:
        step = json.loads(line)
        pos = [float(v) for v in step["agent_pos"]]
        t = float(step.get("t", 0.0))
    except (ValueError, KeyError, TypeError):
        return previous
    if len(pos) != 3 or not all(math.isfinite(v) for v in pos):
        return previous
    speed = 0.0
    if previous is not None and t > previous[0]:
        speed = math.dist(pos, previous[1]) / (t - previous[0])
    distance = step.get("distance_to_target")
    track["step"].append(step.get("step", len(track["step"])))
    track["t"].append(round(t, 4))
    track["pos"].extend(round(v, 3) for v in pos)
    track["speed"].append(round(speed, 3))
    track["collisions"].append(int(step.get("collisions_count") or 0))
    track["distance"].append(round(float(distance), 3) if isinstance(distance, (int, float)) else None)
    return (t, pos)


def episode_view(run_dir: Path, record: dict, iteration: int | str, seed: int,
                 max_points: int = MAX_TRACK_POINTS) -> dict:
    """``GET /runs/<id>/episodes/<iteration>/<seed>``: one episode of a run, for the 3D view.

    ``{"run_id", "iteration", "seed", "candidate", "scenario", "start", "target", "task_spec",
    "summary" (summary.<seed>.json or null while it runs), "checks" (the summary's per-check
    results when it has them, else null), "track" (``decimated_track``)}``. The start and
    target are the summary's effective ones (after lifting above terrain), else the request's.
    """
    folder, candidate = episode_dir(run_dir, iteration, seed)
    summary = read_json_file(folder / f"summary.{seed}.json")
    request = record.get("request") or {}
    summary_dict = summary if isinstance(summary, dict) else {}
    return {
        "run_id": record.get("run_id"), "iteration": iteration, "seed": seed,
        "candidate": candidate, "scenario": request.get("scenario") or "terrain",
        "start": summary_dict.get("start"),
        "target": summary_dict.get("target") or request.get("target"),
        "task_spec": record.get("task_spec") or request.get("task_spec"),
        "summary": summary if isinstance(summary, dict) else None,
        "checks": summary_dict.get("checks"),
        "track": decimated_track(folder / f"steps.{seed}.jsonl", max_points),
    }


def episode_seeds(run_dir: Path, iteration: int | str) -> list[int]:
    """Seeds with an episode folder in the iteration (the chosen candidate's or any)."""
    base = run_dir / ("holdout" if iteration == "holdout" else f"iter_{iteration}")
    seeds = set()
    for folder in list(base.glob("ep_*")) + list(base.glob("cand_*/ep_*")):
        tail = folder.name[3:]
        if tail.isdigit():
            seeds.add(int(tail))
    return sorted(seeds)


# ============================================================================ worlds

def parse_scenario(text: str, scenarios: tuple[str, ...]) -> str:
    if text not in scenarios:
        raise NotFound(f"scenario: expects one of {', '.join(scenarios)}, actual: {show(text)}",
                       field="scenario")
    return text


def world_arrays(world) -> tuple[np.ndarray, np.ndarray]:
    """(coords int32 N x 3, bits uint32 N) of a VoxelGrid of either backend."""
    if hasattr(world, "_arrays"):               # the embedded backend's cached arrays
        coords, bits = world._arrays()
        return np.asarray(coords, dtype=np.int32).reshape(-1, 3), np.asarray(bits, dtype=np.uint32)
    cells = world.to_dict_py_tolistpy()          # voxelsim: [((x, y, z), Cell), ...]
    coords = np.array([c for c, _ in cells], dtype=np.int32).reshape(-1, 3)
    bits = np.array([cell.bits_py() for _, cell in cells], dtype=np.uint32)
    return coords, bits


def visible_cells(coords: np.ndarray) -> np.ndarray:
    """A mask of the cells with at least one free face other than the bottom (+z) one.

    Cells buried on every other side can never be seen from above or the side, so the 3D view
    does without them: on the standard terrain world this keeps about a third fewer cells.
    """
    if len(coords) == 0:
        return np.zeros(0, dtype=bool)
    low = coords.min(axis=0) - 1
    shape = tuple(int(v) for v in coords.max(axis=0) - low + 2)
    occupied = np.zeros(shape, dtype=bool)
    index = coords - low
    occupied[index[:, 0], index[:, 1], index[:, 2]] = True
    covered = occupied.copy()
    covered[1:-1, 1:-1, 1:-1] &= (occupied[:-2, 1:-1, 1:-1] & occupied[2:, 1:-1, 1:-1]
                                  & occupied[1:-1, :-2, 1:-1] & occupied[1:-1, 2:, 1:-1]
                                  & occupied[1:-1, 1:-1, :-2])      # z - 1 is the cell above
    covered[0, :, :] = covered[-1, :, :] = False
    covered[:, 0, :] = covered[:, -1, :] = False
    covered[:, :, 0] = False
    return ~covered[index[:, 0], index[:, 1], index[:, 2]]


def world_payload(scenario: str, seed: int, coords: np.ndarray, bits: np.ndarray) -> dict:
    """``{"scenario", "seed", "cells_total", "count", "coords": flat, "bits", "bounds"}``.

    Only the visible cells (``visible_cells``) and every INTEREST cell; ``bounds`` is
    ``{"min": [x, y, z], "max": [x, y, z]}`` of all cells.
    """
    keep = visible_cells(coords) | ((bits & INTEREST) != 0)
    kept, kept_bits = coords[keep], bits[keep]
    bounds = ({"min": coords.min(axis=0).tolist(), "max": coords.max(axis=0).tolist()}
              if len(coords) else {"min": [0, 0, 0], "max": [0, 0, 0]})
    return {"scenario": scenario, "seed": seed, "cells_total": int(len(coords)),
            "count": int(len(kept)), "coords": kept.ravel().tolist(),
            "bits": kept_bits.tolist(), "bounds": bounds,
            "flags": {"FILLED": FILLED, "SPARSE": SPARSE, "GROUND": GROUND, "INTEREST": INTEREST}}


class WorldCache:
    """Worlds built with a scenario's own builder, as JSON bytes, the last few kept.

    ``get(vxs, scenario, seed)`` -> bytes of ``world_payload``. Building the standard terrain
    world takes most of a second, so a view of the same seed again answers from memory.
    Thread-safe; two requests for the same world at once build it once.
    """

    def __init__(self, size: int = WORLD_CACHE_SIZE):
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict = OrderedDict()
        self._building: dict = {}

    def get(self, vxs, scenario: str, seed: int) -> bytes:
        from bgen.sim import scenarios

        key = (vxs.__name__, scenario, seed)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            lock = self._building.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._entries:
                    return self._entries[key]
            world = scenarios.get_scenario(scenario).build(vxs, seed)
            coords, bits = world_arrays(world)
            body = json.dumps(world_payload(scenario, seed, coords, bits),
                              separators=(",", ":")).encode("utf-8")
            with self._lock:
                self._entries[key] = body
                self._building.pop(key, None)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return body


# ============================================================================ policy diffs

def parse_diff_query(query: str, available: list[int]) -> tuple[int, int]:
    """``?from=A&to=B`` -> (A, B); ``to`` defaults to the latest iteration with code, ``from`` to
    the one before ``to``. BadRequest for a malformed number, NotFound for an iteration without
    code."""
    params = query_params(query, ("from", "to"))
    to = query_int(params, "to", 0, 10**6)
    start = query_int(params, "from", 0, 10**6)
    if not available:
        raise NotFound("run has no policy code yet", field="to")
    if to is None:
        to = available[-1]
    if start is None:
        earlier = [n for n in available if n < to]
        start = earlier[-1] if earlier else to
    for name, value in (("from", start), ("to", to)):
        if value not in available:
            raise NotFound(f"{name}: run has no policy for iteration {value}; iterations with "
                           f"code: {available}", field=name)
    return start, to


def unified_diff(old: str, new: str, old_label: str, new_label: str,
                 context: int = MAX_DIFF_CONTEXT) -> dict:
    """``{"diff": unified diff text (difflib), "added": lines, "removed": lines}``."""
    lines = list(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                      fromfile=old_label, tofile=new_label, n=context))
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    added = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in lines if line.startswith("-") and not line.startswith("---"))
    return {"diff": text, "added": added, "removed": removed}


def code_diff(run_id: str, old: tuple[int, str], new: tuple[int, str]) -> dict:
    """``GET /code/<id>/diff``: ``{"run_id", "from", "to", "diff", "added", "removed"}``."""
    (start, old_code), (to, new_code) = old, new
    body = unified_diff(old_code, new_code, f"iter_{start}/policy.generated.py",
                        f"iter_{to}/policy.generated.py")
    return {"run_id": run_id, "from": start, "to": to, **body}
