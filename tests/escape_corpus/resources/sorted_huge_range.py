# tries: sort a range of 10**9 integers (list built in C)
# expect: episode-reason=memory|timeout
# config: max_steps=5

def act(t, agent, world, fw, env, helpers):
    ordered = sorted(range(10 ** 9))
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}
