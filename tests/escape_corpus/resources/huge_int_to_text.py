# tries: convert a 100000-digit integer to text
# expect: episode-reason=policy_error
# config: max_steps=5

def act(t, agent, world, fw, env, helpers):
    text = str(10 ** 100000)
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}
