# tries: read the secret file with np.loadtxt
# expect: rejected rule=denied-attribute

import numpy as np

print(np.loadtxt("@SECRET_FILE@", dtype=str))


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
