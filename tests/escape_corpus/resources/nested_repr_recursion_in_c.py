# tries: repr a list nested a million levels deep (recursion inside C)
# expect: episode-reason=policy_error|crashed|timeout
# config: max_steps=5

def act(t, agent, world, fw, env, helpers):
    nest = []
    for i in range(200000):
        nest = [nest]
    return repr(nest)


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}
