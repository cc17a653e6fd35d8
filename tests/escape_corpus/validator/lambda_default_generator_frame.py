# tries: hide a frame walk in a lambda default
# expect: rejected rule=frame-attribute

peek = lambda g=(i for i in range(2)): g.gi_frame


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
