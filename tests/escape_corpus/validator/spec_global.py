# tries: walk __spec__ to the import machinery
# expect: rejected rule=underscore-name

machinery = __spec__.loader


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
