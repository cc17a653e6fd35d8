# tries: reach raw memory through ndarray.ctypes
# expect: rejected rule=denied-attribute

import numpy as np

pointer = np.zeros(3).ctypes.data


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
