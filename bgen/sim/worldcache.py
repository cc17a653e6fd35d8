"""Episode worlds built once: a world is a pure function of (scenario, seed, backend).

    world(vxs, scenario, seed, directory=None) -> a world of its own for one episode

    lookup order             kept as                                  shared by
    1. this process's memory  read-only coords/bits arrays, LRU,        the episodes, candidates and
                              at most ``MEMORY_BUDGET_BYTES``           iterations run in this process
    2. ``directory`` (files)  ``<key>.coords.npy`` (int32 N×3) and      every process given the same
                              ``<key>.bits.npy`` (uint32 N), memory-    directory: the workers of a
                              mapped read-only; oldest files removed    run, and the runs of a server
                              beyond ``FILE_BUDGET_BYTES``              (``<runs>/world-cache``)
    3. the scenario's ``build(vxs, seed)``, then stored in 2 and 1

Copy-on-write: on the embedded backend every call returns a new ``VoxelGrid`` over the same
read-only arrays; the first change an episode makes through the public API (``add_target_cell``,
``set``/``remove`` of the filter world...) gives that grid a private dict, so the cached arrays
and every other episode's world stay as built (``tests/test_sim_worldcache.py`` edits one).
On voxelsim (the Rust backend) the cache keeps one built world per key in memory and hands out
``clone_py()`` copies; it writes no files, having no way to read cells back in bulk.

The key names the scenario, the seed (0 for a scenario whose world ignores it, such as the
wind farm), the backend, and a fingerprint of the source files that generate worlds
(``terrain.py``, ``scenarios.py``), so a change to the generator never serves stale cells.
The directory is passed explicitly (``EpisodeConfig.world_cache_dir``), never read from the
environment: episode workers may start with an empty one. Nothing here starts a process.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np

from bgen.sim import backend_label, load_backend
from bgen.sim import scenarios

MEMORY_BUDGET_BYTES = 96 * 1024 * 1024    # about 40 terrain worlds of 140,000 cells
FILE_BUDGET_BYTES = 512 * 1024 * 1024     # about 200 worlds on disk
CACHE_FORMAT = 1                          # bump when the file layout changes
_GENERATOR_FILES = ("embedded/terrain.py", "scenarios.py")

_lock = threading.Lock()                  # guards _memory and _stats (the loop runs threads)
_memory: OrderedDict = OrderedDict()      # key -> (coords, bits) or a voxelsim template world
_memory_bytes = 0
_stats = {"memory": 0, "file": 0, "built": 0}
_fingerprint: str | None = None


def stats() -> dict:
    """How worlds were served in this process: ``{"memory": n, "file": n, "built": n}``."""
    with _lock:
        return dict(_stats)


def clear_memory() -> None:
    """Forget the worlds kept in this process (files stay); counters are reset too."""
    global _memory_bytes
    with _lock:
        _memory.clear()
        _memory_bytes = 0
        for name in _stats:
            _stats[name] = 0


def generator_fingerprint() -> str:
    """First 12 hex digits of sha256 over the files that generate worlds (and CACHE_FORMAT)."""
    global _fingerprint
    if _fingerprint is None:
        digest = hashlib.sha256(str(CACHE_FORMAT).encode())
        here = Path(__file__).resolve().parent
        for name in _GENERATOR_FILES:
            digest.update((here / name).read_bytes())
        _fingerprint = digest.hexdigest()[:12]
    return _fingerprint


def world_key(scenario: str, seed: int, backend: str) -> str:
    """The cache key, also the file stem: ``<scenario>-<seed>-<backend>-<fingerprint>``."""
    entry = scenarios.get_scenario(scenario)
    seed = int(seed) & 0xFFFF_FFFF if getattr(entry, "world_depends_on_seed", True) else 0
    return f"{scenario}-{seed}-{backend}-{generator_fingerprint()}"


def world(vxs: types.ModuleType | None, scenario: str, seed: int,
          directory: str | os.PathLike | None = None):
    """The world of ``scenario`` for ``seed`` on backend ``vxs``, for one episode to own.

    ``directory``: where built worlds are shared between processes (created when missing);
    None keeps them in this process only. Raises ``ConfigError`` for an unknown scenario.
    A cache file that cannot be read or written is ignored (the world is built instead).
    """
    vxs = load_backend() if vxs is None else vxs
    backend = backend_label(vxs)
    key = world_key(scenario, seed, backend)
    embedded = backend == "embedded"
    with _lock:
        kept = _memory.get(key)
        if kept is not None:
            _memory.move_to_end(key)
            _stats["memory"] += 1
    if kept is not None:
        return _hand_out(vxs, kept, embedded)
    kept = _read_files(Path(directory), key) if embedded and directory is not None else None
    if kept is not None:
        counter = "file"
    else:
        counter = "built"
        built = scenarios.get_scenario(scenario).build(vxs, seed)
        if embedded:
            coords, bits = built._arrays()
            kept = (coords, bits)
            if directory is not None:
                _write_files(Path(directory), key, coords, bits)
        else:
            kept = built
    _remember(key, kept, embedded, counter)
    return _hand_out(vxs, kept, embedded)


def _hand_out(vxs, kept, embedded: bool):
    if embedded:
        return vxs.VoxelGrid._sharing(*kept)
    return kept.clone_py()


def _remember(key: str, kept, embedded: bool, counter: str) -> None:
    global _memory_bytes
    size = int(kept[0].nbytes + kept[1].nbytes) if embedded else 0
    with _lock:
        _stats[counter] += 1
        if key in _memory:
            return
        _memory[key] = kept
        _memory_bytes += size
        while _memory_bytes > MEMORY_BUDGET_BYTES and len(_memory) > 1:
            _, old = _memory.popitem(last=False)
            if isinstance(old, tuple):
                _memory_bytes -= int(old[0].nbytes + old[1].nbytes)


# --- files -----------------------------------------------------------------------------------
def _paths(directory: Path, key: str) -> tuple[Path, Path]:
    return directory / f"{key}.coords.npy", directory / f"{key}.bits.npy"


def _read_files(directory: Path, key: str):
    """(coords, bits) memory-mapped read-only, or None when absent or malformed."""
    coords_path, bits_path = _paths(directory, key)
    try:
        coords = np.load(coords_path, mmap_mode="r", allow_pickle=False)
        bits = np.load(bits_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if (coords.dtype != np.int32 or coords.ndim != 2 or coords.shape[1:] != (3,)
            or bits.dtype != np.uint32 or bits.shape != (len(coords),)):
        return None
    try:
        now = time.time()
        os.utime(coords_path, (now, now))   # recently used: evicted last
    except OSError:
        pass
    return coords, bits


def _write_files(directory: Path, key: str, coords: np.ndarray, bits: np.ndarray) -> None:
    """Write both files atomically (bits first: a coords file means the pair is complete)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        coords_path, bits_path = _paths(directory, key)
        for path, array in ((bits_path, bits), (coords_path, coords)):
            handle, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".npy")
            try:
                with os.fdopen(handle, "wb") as out:
                    np.save(out, np.ascontiguousarray(array), allow_pickle=False)
                os.chmod(tmp, 0o644)   # mkstemp's 0600 would hide it from other users
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        _evict(directory, FILE_BUDGET_BYTES)
    except OSError:
        pass   # a read-only or full disk only costs the rebuild next time


def _evict(directory: Path, budget: int) -> None:
    """Remove the least recently used world files until the directory fits ``budget`` bytes."""
    pairs = []
    total = 0
    for coords_path in directory.glob("*.coords.npy"):
        bits_path = coords_path.with_name(coords_path.name[:-len(".coords.npy")] + ".bits.npy")
        try:
            size = coords_path.stat().st_size + bits_path.stat().st_size
            used = coords_path.stat().st_mtime
        except OSError:
            continue
        pairs.append((used, coords_path, bits_path, size))
        total += size
    for _, coords_path, bits_path, size in sorted(pairs, key=lambda pair: pair[0]):
        if total <= budget:
            break
        coords_path.unlink(missing_ok=True)   # coords first: the pair stops being served
        bits_path.unlink(missing_ok=True)
        total -= size
