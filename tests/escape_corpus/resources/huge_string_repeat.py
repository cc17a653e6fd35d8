# tries: allocate 'x' * 10**10 in one C call
# expect: episode-reason=memory
# config: max_steps=5

def act(t, agent, world, fw, env, helpers):
    blob = "x" * 10 ** 10
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}
