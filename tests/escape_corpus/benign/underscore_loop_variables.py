# tries: use '_' as a throwaway variable and ignore tuple parts
# expect: runs

def act(t, agent, world, fw, env, helpers):
    for _ in range(2):
        x, _, z = agent.get_coord_py()
    _ = [0 for _ in range(3)]
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "ok"}
