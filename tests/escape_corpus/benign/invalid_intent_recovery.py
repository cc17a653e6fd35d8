# tries: catch a planner error (a goal inside the ground) and fly up instead; an unreachable goal costs the embedded A* up to ~2 s before it gives up, hence the budget
# expect: runs
# config: act_budget_s=4

import voxelsim as vxs


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is None:
        x, y, z = agent.get_coord_py()
        try:
            return helpers.plan_to(world, agent.get_coord_py(), [x + 2, y, z + 40], 1.0, 0.0)
        except Exception as error:
            return helpers.intent(0.4, 0.0, [vxs.MoveDir.Up])
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "recovered"}
