"""Fly to the target with A*: plan once when idle, replan when the flight ends short of it."""

import math
import voxelsim as vxs

TARGET = [60, 60, -20]
PADDING = 1
URGENCY = 0.8
STATS = {"plans": 0, "failures": 0}


def init(config):
    global TARGET
    if config.get("target") is not None:
        TARGET = [int(round(v)) for v in config["target"]]
    STATS["plans"] = 0          # mutating a dict needs no `global`; assigning a name does
    STATS["failures"] = 0


def distance(a, b):
    return math.sqrt(sum((a[i] - b[i]) ** 2 for i in range(3)))


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is not None:
        return None
    origin = agent.get_coord_py()
    if origin == TARGET:
        return None
    # Padding keeps the route away from terrain; near the goal it may have to be 0.
    for padding in (PADDING, 0):
        try:
            intent = helpers.plan_to(world, origin, TARGET, URGENCY, 0.0, padding)
        except Exception:
            STATS["failures"] += 1
            continue
        STATS["plans"] += 1
        return intent, "Replace"
    return helpers.intent(URGENCY, 0.0, [vxs.MoveDir.Up, vxs.MoveDir.Up]), "Replace"


def collect(step_ctx):
    return {"dist": f"{step_ctx['distance_to_target']:.2f}", "plans": str(STATS["plans"])}


def finalize(ep_ctx):
    return {"summary": f"{ep_ctx['reason']} after {ep_ctx['steps']} steps, "
                       f"{STATS['plans']} plans, {STATS['failures']} planner failures, "
                       f"{ep_ctx['collisions_total']} collisions"}
