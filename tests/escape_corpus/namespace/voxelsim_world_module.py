# tries: walk from the backend package to a submodule's imports
# expect: load-error rule=load-exception

import voxelsim as vxs

numpy_module = vxs.world.np


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
