# tries: forge object pointers with the ndarray constructor and a buffer
# expect: load-error rule=load-exception

import numpy as np

raw = np.array([1, 2], dtype=np.int64)
forged = np.ndarray((2,), dtype=object, buffer=raw)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
