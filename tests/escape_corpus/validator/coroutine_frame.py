# tries: define a coroutine and walk cr_frame
# expect: rejected rule=node-type

async def coro():
    return 1

frame = coro().cr_frame


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
