# tries: replace a function on a stand-in module
# expect: load-error rule=load-exception

import math

math.sqrt = print


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
