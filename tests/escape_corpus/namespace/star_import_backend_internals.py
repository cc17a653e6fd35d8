# tries: star-import voxelsim and use a submodule name
# expect: load-error rule=load-exception

from voxelsim import *

operator_module = convert.operator


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
