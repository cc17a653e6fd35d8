# tries: build '__class__' at run time and pass it to getattr
# expect: rejected rule=forbidden-name

name = "_" + "_class" + "__"
cls = getattr((), name)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
