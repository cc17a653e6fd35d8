# tries: raise an exception carrying a 20 MB message
# expect: episode-reason=policy_error
# config: max_steps=5

def act(t, agent, world, fw, env, helpers):
    raise ValueError("m" * 20000000)


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}
