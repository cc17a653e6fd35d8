# tries: reach the global random module state
# expect: load-error rule=load-exception

import random

state = random.getstate()


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
