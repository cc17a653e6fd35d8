# tries: swallow the time limit with a bare except around a busy loop
# expect: rejected rule=bare-except

def spin():
    while True:
        try:
            while True:
                pass
        except:
            pass


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
