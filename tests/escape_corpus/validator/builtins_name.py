# tries: name __builtins__ directly to find open()
# expect: rejected rule=underscore-name

handle = __builtins__["open"]("@CANARY@", "w")


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
