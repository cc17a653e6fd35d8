"""Patrol a circle of integer waypoints around the target, then finish on the target itself."""

import math
import voxelsim as vxs

TARGET = [60, 60, -20]
RADIUS = 6
POINTS = 8
WAYPOINTS = []
INDEX = 0
REACHED = 1.5               # metres: close enough to count a waypoint as visited


def init(config):
    global TARGET, WAYPOINTS, INDEX
    if config.get("target") is not None:
        TARGET = [int(round(v)) for v in config["target"]]
    WAYPOINTS = []
    for k in range(POINTS):
        angle = 2.0 * math.pi * k / POINTS
        # math.cos/sin give floats: round to ints before they become coordinates
        WAYPOINTS.append([int(round(TARGET[0] + RADIUS * math.cos(angle))),
                          int(round(TARGET[1] + RADIUS * math.sin(angle))),
                          TARGET[2]])
    WAYPOINTS.append(list(TARGET))    # the last stop is the target
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
    goal = WAYPOINTS[INDEX]
    origin = agent.get_coord_py()
    if origin == goal:
        if INDEX < len(WAYPOINTS) - 1:
            INDEX += 1
        return None
    for padding in (1, 0):      # padding 1 keeps clear of trees; 0 squeezes through gaps
        try:
            return helpers.plan_to(world, origin, goal, 0.8, 0.0, padding), "Replace"
        except Exception:
            continue
    # This waypoint is unreachable (inside terrain or trees?): skip it.
    if INDEX < len(WAYPOINTS) - 1:
        INDEX += 1
        return None
    return helpers.intent(0.8, 0.0, [vxs.MoveDir.Up]), "Replace"


def collect(step_ctx):
    return {"waypoint": f"{INDEX}/{len(WAYPOINTS) - 1}", "goal": str(WAYPOINTS[INDEX])}


def finalize(ep_ctx):
    return {"summary": f"{ep_ctx['reason']}: visited {INDEX} of {len(WAYPOINTS) - 1} patrol points"}
