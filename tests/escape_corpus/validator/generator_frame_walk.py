# tries: walk gi_frame.f_back.f_globals from a generator
# expect: rejected rule=frame-attribute

generator = (i for i in range(3))
caller_globals = generator.gi_frame.f_back.f_globals


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
