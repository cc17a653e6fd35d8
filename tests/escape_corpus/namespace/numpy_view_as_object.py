# tries: reinterpret an integer array as object pointers
# expect: load-error rule=load-exception

import numpy as np

forged = np.zeros(2, dtype=np.int64).view(object)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
