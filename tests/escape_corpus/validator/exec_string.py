# tries: execute statements hidden in a string
# expect: rejected rule=forbidden-name

exec("import os\nos.system('touch @CANARY@')")


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
