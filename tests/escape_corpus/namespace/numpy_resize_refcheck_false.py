# tries: resize an array in place with refcheck=False, leaving a view on freed memory
# expect: load-error rule=load-exception

import numpy as np

base = np.zeros(100000)
window = base[0:10]
base.resize(10, refcheck=False)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
