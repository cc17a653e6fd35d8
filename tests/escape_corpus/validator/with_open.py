# tries: open a file in a with statement
# expect: rejected rule=forbidden-name

with open("@CANARY@", "w") as handle:
    handle.write("x")


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
