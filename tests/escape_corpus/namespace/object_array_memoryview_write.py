# tries: overwrite the object pointers of an object array through its writable memoryview (ndarray.data)
# expect: episode-reason=policy_error
# config: max_steps=3

import numpy as np


def act(t, agent, world, fw, env, helpers):
    items = np.array([None, "x"], dtype=object)
    raw = items.data.cast("B")
    raw[0:8] = bytes([65] * 8)      # a forged PyObject pointer: 0x4141414141414141
    return repr(items[0])


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
