# tries: return a list (not JSON-shaped notes) from finalize()
# expect: episode-reason=policy_error|max_steps
# config: max_steps=5

def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return [act, collect]
