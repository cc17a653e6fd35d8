# tries: reach the backend module held by helpers
# expect: episode-reason=policy_error

def act(t, agent, world, fw, env, helpers):
    backend = helpers.vxs
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}
