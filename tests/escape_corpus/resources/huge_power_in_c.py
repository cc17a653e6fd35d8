# tries: compute 10**10**8 (long multiplication in C)
# expect: episode-reason=timeout|memory
# config: max_steps=5

def act(t, agent, world, fw, env, helpers):
    value = 10 ** 10 ** 8
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}
