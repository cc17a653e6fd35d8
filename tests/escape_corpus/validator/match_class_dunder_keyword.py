# tries: capture __class__ with a match class pattern keyword
# expect: rejected rule=underscore-name

match ():
    case tuple(__class__=cls):
        base = cls


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
