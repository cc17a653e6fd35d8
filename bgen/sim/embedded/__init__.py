"""The embedded voxelsim-compatible backend: voxelsim's Python API in Python + numpy.

``import voxelsim as vxs`` and ``vxs = bgen.sim.load_backend("embedded")`` expose the same
names, with the same argument order, return types and failure behaviour, as the real module
built from Merlotec/vxs (``voxelsim/src/py.rs``, ``voxelsim-simulator/src/py.rs``,
``voxelsim-compute/src/py.rs``). Where we knowingly differ it is said in the class docstring.

    convert.py     PyO3-style argument conversion, PanicException, sealed (immutable) types
    intent.py      MoveDir, ActionIntent
    world.py       Cell, VoxelGrid, VoxelSet, DenseSnapshot
    agent.py       Action, Agent, PyAgentStateUpdate
    trajectory.py  B-spline trajectory through cell centroids
    chase.py       FixedLookaheadChaser, ChaseTarget
    dynamics.py    QuadParams, QuadDynamics, EnvState
    planner.py     AStarActionPlanner
    terrain.py     TerrainConfig, TerrainGenerator
    camera.py      CameraProjection, CameraOrientation, CameraView
    vision.py      FilterWorld, NoiseParams, AgentVisionRenderer
    network.py     RendererClient, AsyncRendererClient
    wire.py        bincode 2 codec of the renderer's wire types
"""

from bgen.sim.embedded.convert import PanicException
from bgen.sim.embedded.intent import ActionIntent, MoveDir
from bgen.sim.embedded.world import Cell, DenseSnapshot, VoxelGrid, VoxelSet
from bgen.sim.embedded.agent import Action, Agent, PyAgentStateUpdate
from bgen.sim.embedded.chase import ChaseTarget, FixedLookaheadChaser
from bgen.sim.embedded.dynamics import EnvState, QuadDynamics, QuadParams
from bgen.sim.embedded.planner import AStarActionPlanner
from bgen.sim.embedded.terrain import TerrainConfig, TerrainGenerator
from bgen.sim.embedded.camera import CameraOrientation, CameraProjection, CameraView
from bgen.sim.embedded.vision import AgentVisionRenderer, FilterWorld, NoiseParams, WorldChangeset
from bgen.sim.embedded.network import AsyncRendererClient, RendererClient

__all__ = [
    "Action", "ActionIntent", "Agent", "AgentVisionRenderer",
    "AStarActionPlanner", "AsyncRendererClient", "CameraOrientation", "CameraProjection",
    "CameraView", "Cell", "ChaseTarget", "DenseSnapshot", "EnvState", "FilterWorld",
    "FixedLookaheadChaser", "MoveDir", "NoiseParams", "PanicException", "PyAgentStateUpdate",
    "QuadDynamics", "QuadParams", "RendererClient", "TerrainConfig", "TerrainGenerator",
    "VoxelGrid", "VoxelSet", "WorldChangeset",
]
