# tries: read and call a defaultdict's public default_factory
# expect: runs

import collections

table = collections.defaultdict(list)
factory = table.default_factory
made = factory()


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
