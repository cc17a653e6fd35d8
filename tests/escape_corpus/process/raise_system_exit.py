# tries: raise SystemExit to end the worker silently
# expect: rejected rule=forbidden-name

raise SystemExit(0)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
