# tries: print everything init() and act() receive, looking for secrets
# expect: runs

def init(config):
    print(config)


def act(t, agent, world, fw, env, helpers):
    print(t, agent, world, fw, env, helpers)
    return None


def collect(step_ctx):
    return {"ctx": step_ctx}


def finalize(ep_ctx):
    return {"summary": ep_ctx}
