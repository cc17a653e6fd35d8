# tries: walk tb_frame/f_back/f_builtins from a traceback object
# expect: rejected rule=frame-attribute

def climb(tb):
    return tb.tb_frame.f_back.f_builtins


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
