"""Policy template: the four functions the runner calls. Replace the logic, keep the shapes.

init(config)                             once per episode; config["target"] is the target point
act(t, agent, world, fw, env, helpers)   every step; return an ActionIntent, (intent, "Replace"
                                         | "Push") or None to keep flying the current action
collect(step_ctx)                        every step; a small dict of str -> str notes
finalize(ep_ctx)                         once at the end; {"summary": "..."}
"""

import voxelsim as vxs

TARGET = [60, 60, -20]     # replaced by config["target"] in init()
PLANS = 0                  # module state: every function that assigns it says `global PLANS`
FAILURES = 0


def init(config):
    global TARGET, PLANS, FAILURES
    target = config.get("target")
    if target is not None:
        TARGET = [int(round(v)) for v in target]     # voxel coordinates are ints
    PLANS = 0
    FAILURES = 0


def act(t, agent, world, fw, env, helpers):
    global PLANS, FAILURES
    if agent.get_action_py() is not None:
        return None                                  # still flying the last plan
    origin = agent.get_coord_py()
    if origin == TARGET:
        return None
    for padding in (1, 0):               # keep 1 cell from obstacles if possible
        try:
            intent = helpers.plan_to(world, origin, TARGET, 0.8, 0.0, padding)
        except Exception:                # A* raises when there is no path
            FAILURES += 1
            continue
        PLANS += 1
        return intent, "Replace"
    return helpers.intent(0.8, 0.0, [vxs.MoveDir.Up]), "Replace"   # climb, then try again


def collect(step_ctx):
    return {"dist": f"{step_ctx['distance_to_target']:.2f}", "plans": str(PLANS)}


def finalize(ep_ctx):
    return {"summary": f"success={ep_ctx['success']} steps={ep_ctx['steps']} "
                       f"plans={PLANS} planner_failures={FAILURES}"}
