# tries: walk attributes with str.format_map
# expect: rejected rule=denied-attribute

leak = "{x.__class__}".format_map({"x": 1})


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
