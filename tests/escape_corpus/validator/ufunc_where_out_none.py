# tries: read uninitialised heap through where= with an out= that gives no array
# expect: rejected rule=uninitialised-memory

import numpy as np

leak = np.trunc(np.ones(4096), out=None, where=np.zeros(4096, dtype=bool))


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
