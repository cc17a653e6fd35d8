# tries: allocate a 80 GB numpy array
# expect: episode-reason=memory
# config: max_steps=5

import numpy as np


def act(t, agent, world, fw, env, helpers):
    block = np.ones(10 ** 10)
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}
