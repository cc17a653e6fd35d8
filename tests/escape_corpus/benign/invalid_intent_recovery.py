# tries: catch a planner error (origin equals destination: it fails at once) and fly up instead
# expect: runs

import voxelsim as vxs


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is None:
        x, y, z = agent.get_coord_py()
        try:
            return helpers.plan_to(world, agent.get_coord_py(), [x, y, z], 1.0, 0.0)
        except Exception as error:
            return helpers.intent(0.4, 0.0, [vxs.MoveDir.Up])
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "recovered"}
