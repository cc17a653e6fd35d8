# tries: use eval as a decorator on a function named as code
# expect: rejected rule=forbidden-name

def wrap(f):
    return eval


@wrap
def payload():
    pass


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
