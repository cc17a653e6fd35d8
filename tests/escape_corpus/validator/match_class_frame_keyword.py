# tries: capture gi_frame with a match class pattern keyword
# expect: rejected rule=frame-attribute

generator = (i for i in range(3))
match generator:
    case object(gi_frame=frame):
        found = frame


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
