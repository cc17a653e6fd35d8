# tries: read uninitialised heap memory with numpy.empty
# expect: load-error rule=load-exception

import numpy as np

leak = np.empty(1000000, dtype=np.uint8)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
