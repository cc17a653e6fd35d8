"""Patrols a square of side 6 around the start twice (A* to each corner), then flies to the
target. The corners are start + (±3, ±3, 0), visited counter-clockwise from (+3, -3)."""
import math

import voxelsim as vxs

HALF = 3
LAPS = 2
WAYPOINTS = []
INDEX = 0
REACHED = 1.2


def init(config):
    global WAYPOINTS, INDEX
    sx, sy, sz = [int(round(v)) for v in config["start"]]
    corners = [[sx + HALF, sy - HALF, sz], [sx + HALF, sy + HALF, sz],
               [sx - HALF, sy + HALF, sz], [sx - HALF, sy - HALF, sz]]
    WAYPOINTS = corners * LAPS + [[int(round(v)) for v in config["target"]]]
    INDEX = 0


def distance(a, b):
    return math.sqrt(sum((a[i] - b[i]) ** 2 for i in range(3)))


def act(t, agent, world, fw, env, helpers):
    global INDEX
    pos = agent.get_pos()
    while INDEX < len(WAYPOINTS) - 1 and distance(pos, WAYPOINTS[INDEX]) < REACHED:
        INDEX += 1
    if agent.get_action_py() is not None:
        return None
    origin = agent.get_coord_py()
    goal = WAYPOINTS[INDEX]
    if list(origin) == goal:
        INDEX = min(INDEX + 1, len(WAYPOINTS) - 1)
        return None
    try:
        return helpers.plan_to(world, origin, goal, 0.9, 0.0), "Replace"
    except Exception:
        return helpers.intent(0.9, 0.0, [vxs.MoveDir.Up]), "Replace"


def collect(step_ctx):
    return {"waypoint": str(INDEX)}


def finalize(ep_ctx):
    return {"summary": f"patrol ended at waypoint {INDEX}"}
