# tries: use an array instance as a base class, so ndarray is called as a metaclass
# expect: load-error rule=load-exception

import numpy as np

grid = np.zeros(3)


class Forged(grid):
    pass


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
