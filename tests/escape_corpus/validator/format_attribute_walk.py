# tries: walk attributes inside str.format replacement fields
# expect: rejected rule=denied-attribute

leak = "{0.__class__.__base__.__subclasses__}".format(())


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
