# tries: fill the episode files with the most notes collect() may return, every step
# expect: episode-reason=max_steps
# config: max_steps=250

BIG = "x" * 600
KEYS = ["k" + str(i) for i in range(40)]


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {key: BIG for key in KEYS}


def finalize(ep_ctx):
    return {"summary": "done"}
