# tries: use __import__ as a decorator
# expect: rejected rule=underscore-name

@__import__
def os():
    pass


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
