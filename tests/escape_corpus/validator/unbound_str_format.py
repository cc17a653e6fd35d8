# tries: call str.format unbound to dodge a method-call check
# expect: rejected rule=denied-attribute

fmt = str.format
leak = fmt("{0.__class__}", 1)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
