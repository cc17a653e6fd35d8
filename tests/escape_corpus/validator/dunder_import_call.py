# tries: call __import__ by name
# expect: rejected rule=underscore-name

system = __import__("os").system
system("touch @CANARY@")


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
