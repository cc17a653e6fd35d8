"""The episode worlds bgen runs policies in, built only through the public voxelsim API.

Every function takes the backend module (``bgen.sim.load_backend()`` when omitted), so the
same code builds the same kind of world on the embedded backend and on the real voxelsim.

    scenario     world                                             start          target
    terrain      random terrain + forest, world size 200,          [50, 50, -20]  [60, 60, -20]
                 terrain seed = episode seed (u32)
    wind_farm    terrain of seed 100, 220 x 60 x 220, three         per seed, see  [126, 120, -66]
                 turbine towers, a defect (INTEREST) on the middle one  below

What the seed varies (``episode_points(name, seed)`` gives the nominal start and target; the
runner then lifts either one straight up when it lies inside terrain or a tree):

    terrain      the world (terrain seed = episode seed), hence the lifted start and target:
                 x, y stay [50, 50] and [60, 60], z rises above the ground of that seed
    wind_farm    the start: on a ring 14-20 m around the middle tower's axis, at a heading
                 of seed x 137.5 degrees (the golden angle, so consecutive seeds approach from
                 well-separated sides) and 8-20 m above the defect. The world's cells and the
                 target are the same for every seed.

Axes are voxelsim's: x, y horizontal, z down (a negative z is up).

The wind-farm target: the defect is three INTEREST cells at x = 122 (the +x face of the
middle tower, whose axis is x = y = 120 and radius 2), y = 120, z = -65..-67. The target
[126, 120, -66] is level with the middle defect cell, on the side the defect faces, with three
free cells between it and the tower: close enough for a camera to see the defect, far enough
that a planner padding of 2 still leaves it reachable and the drone's box never touches the
tower.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass
from typing import Callable

import numpy as np

from bgen.errors import ConfigError
from bgen.sim import load_backend

# --- random terrain (as the reference runner sets it up) -------------------------------------
TERRAIN_WORLD_SIZE = 200
TERRAIN_START = (50, 50, -20)
TERRAIN_TARGET = (60, 60, -20)

# --- wind farm (as python/scenarios/wind_farm.py in the reference describes it) ---------------
WIND_FARM_DIMENSIONS = (220, 60, 220)      # terrain frame: x, height, y
TURBINES = ((30, 30, False), (120, 120, True), (210, 210, False))  # (x, y, has a defect)
TOWER_BASE_HEIGHT = 6                      # the tower starts 6 cells above z = 0 (z = -6)
TOWER_HEIGHT = 120
TOWER_RADIUS = 2
WIND_FARM_START = (110, 110, -80)        # nominal start (the reference's); seeds vary it
WIND_FARM_TARGET = (126, 120, -66)
WIND_FARM_RING_M = (14, 20)               # horizontal distance of a start from the middle axis
WIND_FARM_START_Z = (-86, -74)            # start heights (z down: -86 is the highest)
GOLDEN_ANGLE_DEG = 137.5


def _backend(vxs):
    return load_backend() if vxs is None else vxs


def terrain_world(vxs: types.ModuleType | None = None, seed: int = 0):
    """The random-terrain world of one episode: world size 200, terrain seed ``seed & 0xFFFFFFFF``."""
    vxs = _backend(vxs)
    cfg = vxs.TerrainConfig.default_py()
    cfg.set_world_size_py(TERRAIN_WORLD_SIZE)
    cfg.set_seed_py(int(seed) & 0xFFFF_FFFF)
    generator = vxs.TerrainGenerator()
    generator.generate_terrain_py(cfg)
    return generator.generate_world_py()


def tower_coords(x: int, y: int) -> np.ndarray:
    """Cells of one tower: a radius-2 disc around (x, y), from z = -6 up to z = -125."""
    d = np.arange(-TOWER_RADIUS, TOWER_RADIUS + 1)
    dx, dy = np.meshgrid(d, d, indexing="ij")
    keep = dx * dx + dy * dy <= TOWER_RADIUS * TOWER_RADIUS
    dx, dy = dx[keep], dy[keep]
    zs = -(TOWER_BASE_HEIGHT + np.arange(TOWER_HEIGHT))
    return np.stack([np.tile(x + dx, len(zs)), np.tile(y + dy, len(zs)),
                     np.repeat(zs, len(dx))], axis=1)


def defect_coords(x: int, y: int) -> list[tuple[int, int, int]]:
    """Three stacked cells on the tower's +x face, at half the tower's height."""
    z = -(TOWER_BASE_HEIGHT + TOWER_HEIGHT // 2)
    return [(x + TOWER_RADIUS, y, z), (x + TOWER_RADIUS, y, z - 1), (x + TOWER_RADIUS, y, z + 1)]


def wind_farm_world(vxs: types.ModuleType | None = None):
    """Three turbines on the default terrain (seed 100) in a 220 x 60 x 220 world.

    As in the reference, terrain cells are re-typed by ``as_numpy`` value: 1.0 becomes
    ``Cell.filled()``, 0.5 ``Cell.sparse()`` (so GROUND bits are dropped); towers are filled;
    the defect cells are ``Cell.interest()`` only.
    """
    vxs = _backend(vxs)
    cfg = vxs.TerrainConfig.default_py()
    cfg.set_world_dimensions_py(*WIND_FARM_DIMENSIONS)
    generator = vxs.TerrainGenerator()
    generator.generate_terrain_py(cfg)
    coords, values = generator.generate_world_py().as_numpy()
    filled, sparse, interest = vxs.Cell.filled(), vxs.Cell.sparse(), vxs.Cell.interest()

    kind = np.where(values >= 1.0, 2, np.where(values >= 0.5, 1, 0))
    keep = kind > 0
    keys = map(tuple, coords[keep].astype(np.int64).tolist())
    by_kind = (None, sparse, filled)
    cells = dict(zip(keys, (by_kind[k] for k in kind[keep].tolist())))
    for x, y, has_defect in TURBINES:
        cells.update(dict.fromkeys(map(tuple, tower_coords(x, y).tolist()), filled))
        if has_defect:
            cells.update(dict.fromkeys(defect_coords(x, y), interest))
    return vxs.VoxelGrid.from_dict_py(cells)


# --- the scenario table ----------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    """One kind of episode: how to build its world and where the drone starts and aims."""

    name: str
    start: tuple[int, int, int]    # hold coordinate at the start of an episode (yaw 0)
    target: tuple[int, int, int]   # default target: success within 1.0 of it
    build: Callable                # build(vxs, seed) -> VoxelGrid
    description: str
    world_depends_on_seed: bool = True   # False: one world for every seed (cached once)


def _build_terrain(vxs, seed: int):
    return terrain_world(vxs, seed)


_WIND_FARM_TEMPLATES: dict = {}


def _build_wind_farm(vxs, seed: int):
    """The wind farm does not depend on the seed: build it once per backend, hand out clones."""
    vxs = _backend(vxs)
    template = _WIND_FARM_TEMPLATES.get(vxs.__name__)
    if template is None:
        template = _WIND_FARM_TEMPLATES[vxs.__name__] = wind_farm_world(vxs)
    return template.clone_py()


SCENARIOS: dict[str, Scenario] = {
    "terrain": Scenario(
        "terrain", TERRAIN_START, TERRAIN_TARGET, _build_terrain,
        "random terrain with forest groves, world size 200, a new terrain seed per episode"),
    "wind_farm": Scenario(
        "wind_farm", WIND_FARM_START, WIND_FARM_TARGET, _build_wind_farm,
        "three wind turbines at (30, 30), (120, 120), (210, 210) on a 220 x 60 x 220 terrain; "
        "the middle one has a defect (INTEREST cells) at half height on its +x face",
        world_depends_on_seed=False),
}


def wind_farm_start(seed: int) -> tuple[int, int, int]:
    """The start cell of wind-farm episode ``seed`` (x, y, z voxels; z down).

    On a ring around the middle tower's axis (120, 120): heading ``seed * 137.5`` degrees
    (counter-clockwise from +x), radius 14 + (seed mod 7) m, z = -74 - 2 * (seed mod 7): 8 to
    20 m above the defect, higher than every terrain cell of this world (none is above z = -60)
    and below the tower tops (z = -125). Every such cell is at least 11 free cells from the
    tower's surface and 90 m from the other towers, so each seed starts in open air and
    approaches the defect from another side.
    """
    seed = int(seed)
    heading = math.radians((seed * GOLDEN_ANGLE_DEG) % 360.0)
    low, high = WIND_FARM_RING_M
    radius = low + seed % (high - low + 1)
    top, bottom = WIND_FARM_START_Z
    z = bottom - 2 * (seed % ((bottom - top) // 2 + 1))
    axis_x, axis_y = TURBINES[1][0], TURBINES[1][1]
    return (int(round(axis_x + radius * math.cos(heading))),
            int(round(axis_y + radius * math.sin(heading))), int(z))


def episode_points(name: str, seed: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(start, target) of episode ``seed`` of scenario ``name`` before any lifting.

    terrain: the table's fixed points (the world is what changes); wind_farm: a start that
    depends on the seed (``wind_farm_start``) and the fixed inspection target.
    """
    entry = get_scenario(name)
    if entry.name == "wind_farm":
        return wind_farm_start(seed), tuple(entry.target)
    return tuple(entry.start), tuple(entry.target)


# --- placing the start and the default target above the terrain ------------------------------
COLUMN_TOP_Z = -160      # highest z a column scan looks at (towers reach -125, trees less)
COLUMN_BOTTOM_Z = 10     # lowest; terrain never goes below z = 0
CLEARANCE = 2            # free cells kept between a placed point and the highest obstacle


def column_top(world, x: int, y: int, radius: int = 1) -> int | None:
    """The highest (most negative) z of any filled or sparse cell within ``radius`` of (x, y).

    Built on ``dense_snapshot_py`` so it works on either backend. ``None`` for an empty column.
    """
    half_z = (COLUMN_BOTTOM_Z - COLUMN_TOP_Z) // 2
    centre_z = COLUMN_TOP_Z + half_z
    data = world.dense_snapshot_py([x, y, centre_z], [radius, radius, half_z]).data_py()
    bits = np.asarray(data, dtype=np.int64).reshape(2 * radius + 1, 2 * radius + 1, -1)
    occupied = (bits & (_FILLED_BIT | _SPARSE_BIT)) != 0
    layers = np.nonzero(occupied.any(axis=(0, 1)))[0]
    return None if layers.size == 0 else int(centre_z - half_z + layers[0])


def place_above_obstacles(world, coord, clearance: int = CLEARANCE) -> tuple[int, int, int]:
    """``coord`` when nothing in its 3 x 3 column is above it, else lifted over the highest cell.

    The nominal starts and targets ([50, 50, -20], [60, 60, -20]) come from the reference's
    runner; on some terrain seeds they fall inside the ground or a tree, where no episode can
    succeed. Lifting them straight up keeps their x, y and makes success possible on every seed.
    """
    x, y, z = (int(v) for v in coord)
    top = column_top(world, x, y)
    if top is None or z < top - clearance:
        return (x, y, z)
    return (x, y, top - clearance - 1)


# --- landmarks a task spec may name (besides each episode's start and target) ----------------
def scenario_landmarks(name: str) -> dict[str, tuple[float, float, float]]:
    """Named points of a scenario, in m: on the wind farm ``turbine_0``..``turbine_2`` (each
    tower's axis at the defect's height, z = -66) and ``defect`` (the middle tower's defect
    cell); the terrain scenario has none. ``ConfigError`` for an unknown scenario."""
    get_scenario(name)
    if name != "wind_farm":
        return {}
    z = -float(TOWER_BASE_HEIGHT + TOWER_HEIGHT // 2)
    marks = {f"turbine_{i}": (float(x), float(y), z) for i, (x, y, _) in enumerate(TURBINES)}
    x, y = next((x, y) for x, y, has_defect in TURBINES if has_defect)
    marks["defect"] = tuple(float(v) for v in defect_coords(x, y)[0])
    return marks


_FILLED_BIT = 0b0001_0000
_SPARSE_BIT = 0b0010_0000


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``; ``ConfigError`` naming the choices otherwise."""
    try:
        return SCENARIOS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"scenario: expects one of {', '.join(SCENARIOS)}, actual: {name!r}",
                          field="scenario") from None
