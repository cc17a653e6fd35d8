# tries: print megabytes every step
# expect: runs
# config: max_steps=5

def act(t, agent, world, fw, env, helpers):
    for i in range(20):
        print("x" * 100000)
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}
