# tries: write a file with tofile on an array the backend returns
# expect: rejected rule=denied-attribute

def act(t, agent, world, fw, env, helpers):
    coords, values = world.as_numpy()
    coords.tofile("@CANARY@")
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}
