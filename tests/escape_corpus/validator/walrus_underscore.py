# tries: bind an underscore name with := inside a comprehension
# expect: rejected rule=underscore-name

values = [(__hidden := i) for i in range(3)]


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
