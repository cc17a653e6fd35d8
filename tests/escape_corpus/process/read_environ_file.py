# tries: read the worker's environment from /proc/self/environ
# expect: rejected rule=forbidden-name

secrets_text = open("/proc/self/environ").read()


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
