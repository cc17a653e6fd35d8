# tries: materialise itertools.count() into a list
# expect: episode-reason=memory|timeout
# config: max_steps=5

import itertools


def act(t, agent, world, fw, env, helpers):
    return list(itertools.count())


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
