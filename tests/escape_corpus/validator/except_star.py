# tries: use except* to catch the time limit inside a group
# expect: rejected rule=node-type

try:
    pass
except* ValueError:
    pass


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
