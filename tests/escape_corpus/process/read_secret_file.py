# tries: read a secret file from disk
# expect: rejected rule=forbidden-name

print(open("@SECRET_FILE@").read())


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
