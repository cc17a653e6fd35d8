# tries: read uninitialised heap through a ufunc's where= without out=
# expect: rejected rule=uninitialised-memory

import numpy as np

leak = np.add(np.zeros(100000), 1.0, where=np.zeros(100000, dtype=bool))


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
