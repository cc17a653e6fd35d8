"""Episode worlds built once: a world is a pure function of (scenario, seed, backend).

    world(vxs, scenario, seed, directory=None) -> a world of its own for one episode

    lookup order             kept as                                  shared by
    1. this process's memory  read-only coords/bits arrays, their       the episodes, candidates and
                              dense copy and planner obstacles, LRU,    iterations run in this process
                              at most ``MEMORY_BUDGET_BYTES``           (and in processes forked from it)
    2. ``directory`` (files)  ``<key>.coords.npy`` (int32 N×3),         every process given the same
                              ``<key>.bits.npy`` (uint32 N) and         directory: the workers of a
                              ``<key>.dense.npy`` (uint32: the box,     run, its graders, and the runs
                              then its cells), memory-mapped read-only; of a server
                              oldest removed beyond                     (``<runs>/world-cache``)
                              ``FILE_BUDGET_BYTES``
    3. the scenario's ``build(vxs, seed)``, then stored in 2 and 1

The dense copy (``world.DenseCells``: what point queries, collisions and the planner read) takes
10–20 ms to build from the arrays; kept beside them, an episode maps it instead.

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
import stat
import tempfile
import threading
import time
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np

from bgen.sim import backend_label, load_backend
from bgen.sim import scenarios
from bgen.sim.embedded.world import DenseCells

MEMORY_BUDGET_BYTES = 192 * 1024 * 1024   # about 15 terrain worlds of 140,000 cells, with
                                          # their dense copies and planner obstacles
FILE_BUDGET_BYTES = 1024 * 1024 * 1024    # about 120 terrain worlds on disk
CACHE_FORMAT = 2                          # bump when the file layout changes
_GENERATOR_FILES = ("embedded/terrain.py", "scenarios.py")

_lock = threading.Lock()                  # guards _memory and _stats (the loop runs threads)
_memory: OrderedDict = OrderedDict()      # key -> (coords, bits, dense) or a voxelsim world
_memory_bytes = 0
_sizes: dict = {}                         # key -> bytes counted for it in _memory_bytes
_used_at: dict = {}                       # key -> time.monotonic() when last served or kept
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
        _sizes.clear()
        _used_at.clear()
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
            _used_at[key] = time.monotonic()
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
            kept = (coords, bits, DenseCells.build(coords, bits))
            if directory is not None:
                _write_files(Path(directory), key, *kept)
        else:
            kept = built
    _remember(key, kept, embedded, counter)
    return _hand_out(vxs, kept, embedded)


def is_stored(vxs: types.ModuleType | None, scenario: str, seed: int,
              directory: str | os.PathLike | None) -> bool:
    """Whether ``world(vxs, scenario, seed, directory)`` would read files instead of building
    (always False without a directory or on voxelsim, which keeps no files)."""
    return stored_paths(vxs, scenario, seed, directory) is not None


def _hand_out(vxs, kept, embedded: bool):
    if embedded:
        return vxs.VoxelGrid._sharing(*kept)
    return kept.clone_py()


def _nbytes(kept) -> int:
    """Bytes of a kept world's arrays, its dense copy and the planner obstacles kept with it."""
    size = 0
    for part in kept:
        if isinstance(part, DenseCells):
            size += int(part.values.nbytes) + sum(
                len(derived.occupied) for derived in part.derived.values()
                if getattr(derived, "occupied", None) is not None)
        elif part is not None:
            size += int(part.nbytes)
    return size


def _remember(key: str, kept, embedded: bool, counter: str, evict: bool = True) -> None:
    global _memory_bytes
    size = _nbytes(kept) if embedded else 0
    with _lock:
        _stats[counter] += 1
        if key in _memory:
            return
        _memory[key] = kept
        _sizes[key] = size
        _used_at[key] = time.monotonic()
        _memory_bytes += size
        if evict:
            _evict_memory()


def _evict_memory() -> None:
    """Forget least recently used worlds while over the budget (``_lock`` held)."""
    global _memory_bytes
    while _memory_bytes > MEMORY_BUDGET_BYTES and len(_memory) > 1:
        key, _ = _memory.popitem(last=False)
        _memory_bytes -= _sizes.pop(key, 0)
        _used_at.pop(key, None)


# --- files -----------------------------------------------------------------------------------
def _paths(directory: Path, key: str) -> tuple[Path, Path]:
    return directory / f"{key}.coords.npy", directory / f"{key}.bits.npy"


def _dense_path(directory: Path, key: str) -> Path:
    return directory / f"{key}.dense.npy"


def _mapped(source) -> np.ndarray:
    """A ``.npy`` array memory-mapped read-only from a path or an open binary file.

    Raises ValueError for anything but a regular file holding a plain (non-object) array, so
    a FIFO or a device in the directory is refused instead of blocking a reader.
    """
    own = not hasattr(source, "fileno")
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    handle = os.fdopen(os.open(source, os.O_RDONLY | os.O_NONBLOCK), "rb") if own else source
    try:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ValueError("not a regular file")
        handle.seek(0)
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ValueError(f"npy format {version}")
        if dtype.hasobject or fortran:
            raise ValueError("not a plain C-order array")
        if int(np.prod(shape)) == 0:
            return np.zeros(shape, dtype=dtype)
        return np.memmap(handle, dtype=dtype, mode="r", offset=handle.tell(), shape=shape)
    finally:
        if own:
            handle.close()


def _consistent(coords: np.ndarray, bits: np.ndarray, dense: DenseCells | None) -> bool:
    """Whether ``dense`` holds these cells: the same count, and 64 cells spread over the
    arrays read back with their bits (a dense file of another world fails this)."""
    if dense is None:
        return False
    if int(np.count_nonzero(dense.values)) != len(bits):
        return False
    if len(bits) == 0:
        return True
    rows = np.linspace(0, len(bits) - 1, num=min(64, len(bits)), dtype=np.int64)
    return dense.holds(coords[rows], bits[rows])


def _load(coords_source, bits_source, dense_source):
    """(coords, bits, dense or None) memory-mapped read-only, or None when the arrays are
    absent, unreadable or malformed; a dense file that is missing, unreadable or not these
    cells' is dropped (it only costs building the dense copy)."""
    try:
        coords = _mapped(coords_source)
        bits = _mapped(bits_source)
    except (OSError, ValueError, EOFError):
        return None
    if (coords.dtype != np.int32 or coords.ndim != 2 or coords.shape[1:] != (3,)
            or bits.dtype != np.uint32 or bits.shape != (len(coords),)):
        return None
    dense = None
    if dense_source is not None:
        try:
            dense = DenseCells.unpacked(_mapped(dense_source))
        except (OSError, ValueError, EOFError):
            dense = None
        if not _consistent(coords, bits, dense):
            dense = None
    if dense is None:              # built once here, not by every copy handed out
        dense = DenseCells.build(coords, bits)
    return coords, bits, dense


def _read_files(directory: Path, key: str):
    """``_load`` of the directory's files for ``key``; marks them recently used."""
    coords_path, bits_path = _paths(directory, key)
    kept = _load(coords_path, bits_path, _dense_path(directory, key))
    if kept is None:
        return None
    try:
        now = time.time()
        os.utime(coords_path, (now, now))   # recently used: evicted last
    except OSError:
        pass
    return kept


def stored_paths(vxs: types.ModuleType | None, scenario: str, seed: int,
                 directory: str | os.PathLike | None) -> list[Path] | None:
    """[coords, bits, dense] paths of a world stored in ``directory`` (for a process that
    cannot open the directory itself to be handed the files), or None when not stored
    (no directory, voxelsim, or the coords and bits files absent)."""
    vxs = load_backend() if vxs is None else vxs
    backend = backend_label(vxs)
    if directory is None or backend != "embedded":
        return None
    key = world_key(scenario, seed, backend)
    coords_path, bits_path = _paths(Path(directory), key)
    if not (coords_path.exists() and bits_path.exists()):
        return None
    return [coords_path, bits_path, _dense_path(Path(directory), key)]


def holds(vxs: types.ModuleType | None, scenario: str, seed: int, touch: bool = False) -> bool:
    """Whether this process's memory keeps the world of (scenario, seed) on backend ``vxs``
    (a process forked from one that held it holds it too); ``touch``: count it as used now,
    so the budget evicts it last."""
    vxs = load_backend() if vxs is None else vxs
    key = world_key(scenario, seed, backend_label(vxs))
    with _lock:
        if key in _memory and touch:
            _memory.move_to_end(key)
            _used_at[key] = time.monotonic()
        return key in _memory


def make_room(extra_bytes: float, idle_s: float) -> bool:
    """Whether ``extra_bytes`` more fit in this process's memory budget once the least
    recently used worlds not used for ``idle_s`` seconds are forgotten (they are); worlds
    used more recently are never forgotten here: then False."""
    global _memory_bytes
    now = time.monotonic()
    with _lock:
        while _memory_bytes + extra_bytes > MEMORY_BUDGET_BYTES and _memory:
            oldest = next(iter(_memory))
            if now - _used_at.get(oldest, now) < idle_s:
                return False
            del _memory[oldest]
            _memory_bytes -= _sizes.pop(oldest, 0)
            _used_at.pop(oldest, None)
        return _memory_bytes + extra_bytes <= MEMORY_BUDGET_BYTES


def kept_keys() -> set:
    """The keys of the worlds this process's memory keeps."""
    with _lock:
        return set(_memory)


def forget(vxs: types.ModuleType | None, scenario: str, seed: int) -> None:
    """Drop the world of (scenario, seed) from this process's memory (its files stay)."""
    vxs = load_backend() if vxs is None else vxs
    _drop(lambda key: key == world_key(scenario, seed, backend_label(vxs)))


def keep_only(vxs: types.ModuleType | None, scenario: str, seed: int) -> None:
    """Drop every world from this process's memory but that of (scenario, seed): a policy
    process forked from a host keeping a run's worlds unmaps the others before its address
    space is limited, so what it may allocate does not depend on what the host keeps."""
    vxs = load_backend() if vxs is None else vxs
    own = world_key(scenario, seed, backend_label(vxs))
    _drop(lambda key: key != own)


def _drop(which) -> None:
    global _memory_bytes
    with _lock:
        for key in [key for key in _memory if which(key)]:
            del _memory[key]
            _memory_bytes -= _sizes.pop(key, 0)
            _used_at.pop(key, None)


def adopt(vxs: types.ModuleType | None, scenario: str, seed: int, files: list,
          evict: bool = True) -> bool:
    """Keep the world of (scenario, seed) from open files ([coords, bits, dense], binary,
    read-only; the dense one may be None, then the dense copy is built from the arrays) in
    this process's memory, as if read from a cache directory; later ``world()`` calls are
    served from it. False when the files are not a world (nothing is kept then, and the
    world gets built). ``evict=False``: keep it even over the memory budget (the caller then
    calls ``make_room(0, ...)`` and forgets it when that fails, so that no world in use is
    evicted for it)."""
    vxs = load_backend() if vxs is None else vxs
    if backend_label(vxs) != "embedded":
        return False
    kept = _load(*files)
    if kept is None:
        return False
    _remember(world_key(scenario, seed, "embedded"), kept, True, "file", evict=evict)
    return True


def adopt_descriptors(vxs: types.ModuleType | None, scenario: str, seed: int, fds,
                      evict: bool = True) -> bool:
    """``adopt`` from open read-only descriptors (coords, bits and, optionally, dense), which
    stay open for the caller to close; False also when one cannot be read as a file."""
    files = []
    try:
        for fd in fds:
            copy = os.dup(fd)
            try:
                files.append(os.fdopen(copy, "rb"))
            except OSError:
                os.close(copy)
                raise
        return adopt(vxs, scenario, seed, (files + [None])[:3], evict=evict)
    except OSError:
        return False
    finally:
        for handle in files:
            handle.close()          # the arrays keep their own mappings


#: Paddings whose planner obstacles ``prepare_planner`` builds: ``helpers.plan_to``'s default
#: and the one-cell margin policies ask for most.
PLANNER_PADDINGS = (0, 1)


def prepare_planner(vxs: types.ModuleType | None, scenario: str, seed: int,
                    paddings=PLANNER_PADDINGS, evict: bool = True) -> None:
    """Build the A* obstacles of a world kept in this process for ``paddings`` now. They are
    kept with its dense cells, so every copy handed out later, in this process or in one
    forked from it, shares them instead of building its own (~8 ms on the standard world).
    Only on the embedded backend, for a world kept in memory; otherwise nothing happens."""
    vxs = load_backend() if vxs is None else vxs
    if backend_label(vxs) != "embedded":
        return
    global _memory_bytes
    key = world_key(scenario, seed, "embedded")
    with _lock:
        kept = _memory.get(key)
    if kept is None:
        return
    from bgen.sim.embedded.planner import prepare_obstacles
    prepare_obstacles(_hand_out(vxs, kept, True), paddings)     # not counted as served
    with _lock:
        if key in _sizes:                 # the obstacles count toward the memory budget
            size = _nbytes(kept)
            _memory_bytes += size - _sizes[key]
            _sizes[key] = size
            if evict:
                _evict_memory()


def _write_files(directory: Path, key: str, coords: np.ndarray, bits: np.ndarray,
                 dense: DenseCells | None) -> None:
    """Write the files atomically, coords last: a coords file means the rest is complete."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        coords_path, bits_path = _paths(directory, key)
        files = [(bits_path, bits), (coords_path, coords)]
        if dense is not None:
            files.insert(0, (_dense_path(directory, key), dense.packed()))
        for path, array in files:
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
    """Remove the least recently used worlds' files until the directory fits ``budget`` bytes."""
    worlds = []
    total = 0
    for coords_path in directory.glob("*.coords.npy"):
        key = coords_path.name[:-len(".coords.npy")]
        paths = [coords_path, *_paths(directory, key)[1:], _dense_path(directory, key)]
        try:
            used = coords_path.stat().st_mtime
            size = sum(path.stat().st_size for path in paths if path.exists())
        except OSError:
            continue
        worlds.append((used, paths, size))
        total += size
    for _, paths, size in sorted(worlds, key=lambda world: world[0]):
        if total <= budget:
            break
        for path in paths:                  # coords first: the world stops being served
            path.unlink(missing_ok=True)
        total -= size
