# tries: pass a dunder keyword argument
# expect: rejected rule=underscore-name

made = dict(__class__=1)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
