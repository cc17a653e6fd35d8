# tries: reach the backend module through a method's __globals__
# expect: rejected rule=underscore-name

import voxelsim as vxs

module_globals = vxs.MoveDir.to_string.__globals__


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
