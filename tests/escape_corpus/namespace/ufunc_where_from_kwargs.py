# tries: read uninitialised heap through where= hidden in a ** dict the validator cannot read
# expect: load-error rule=load-exception

import numpy as np

options = {"where": np.zeros(4096, dtype=bool)}
leak = np.power(np.ones(4096), 2.0, **options)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
