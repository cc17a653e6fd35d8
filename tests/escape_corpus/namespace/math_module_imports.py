# tries: look for a module re-exported by math
# expect: load-error rule=load-exception

import math

system = math.os.system


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
