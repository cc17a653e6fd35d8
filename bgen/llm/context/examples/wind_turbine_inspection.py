"""Wind farm: fly round the middle turbine at a safe distance, then hold at the inspection point.

The towers stand on the ground with their axis at (x, y) = (30, 30), (120, 120) and
(210, 210), radius 2, reaching far above the start height. The target is the inspection
point in front of the middle tower.
"""

import math
import voxelsim as vxs

TARGET = [126, 120, -66]
TOWER = [120, 120]           # axis of the tower to inspect
STANDOFF = 6                 # horizontal cells kept between the route and the tower axis
ROUTE = []
LEG = 0


def init(config):
    global TARGET, ROUTE, LEG
    if config.get("target") is not None:
        TARGET = [int(round(v)) for v in config["target"]]
    z = TARGET[2]
    ROUTE = []
    # Three viewpoints on a circle around the tower at the target's height, then the target.
    for degrees in (225, 135, 45):
        angle = math.radians(degrees)
        ROUTE.append([int(round(TOWER[0] + STANDOFF * math.cos(angle))),
                      int(round(TOWER[1] + STANDOFF * math.sin(angle))), z])
    ROUTE.append(list(TARGET))
    LEG = 0


def act(t, agent, world, fw, env, helpers):
    global LEG
    if agent.get_action_py() is not None:
        return None
    origin = agent.get_coord_py()
    while LEG < len(ROUTE) - 1 and origin == ROUTE[LEG]:
        LEG += 1
    goal = ROUTE[LEG]
    if origin == goal:
        return None
    for padding in (2, 1, 0):
        try:
            return helpers.plan_to(world, origin, goal, 0.8, 0.0, padding), "Replace"
        except Exception:
            continue
    if LEG < len(ROUTE) - 1:
        LEG += 1                              # skip a viewpoint that cannot be reached
    return helpers.intent(0.6, 0.0, [vxs.MoveDir.Up]), "Replace"


def collect(step_ctx):
    return {"leg": f"{LEG + 1}/{len(ROUTE)}", "dist": f"{step_ctx['distance_to_target']:.1f}"}


def finalize(ep_ctx):
    return {"summary": f"{ep_ctx['reason']} on leg {LEG + 1} of {len(ROUTE)} "
                       f"with {ep_ctx['collisions_total']} collisions"}
