# tries: read gi_code.co_consts of a generator
# expect: rejected rule=frame-attribute

def gen():
    yield 1

consts = gen().gi_code.co_consts


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
