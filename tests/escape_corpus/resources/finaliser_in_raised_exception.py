# tries: run code outside every budget: a generator suspended in try/finally left in the frame of an exception collect() raises
# expect: episode-reason=timeout
# config: max_steps=200


def _slow():
    try:
        yield 1
    finally:
        while True:
            pass


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    keep = _slow()
    next(keep)
    raise ValueError("a live generator in this frame")


def finalize(ep_ctx):
    return {"summary": "done"}
