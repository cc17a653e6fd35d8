# tries: recurse without end in Python
# expect: episode-reason=policy_error
# config: max_steps=5

def dive(n):
    return dive(n + 1)


def act(t, agent, world, fw, env, helpers):
    return dive(0)


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}
