# tries: walk ag_frame of an async generator object
# expect: rejected rule=frame-attribute

def peek(agen):
    return agen.ag_frame.f_globals


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
