# tries: bind a match mapping rest to an underscore name
# expect: rejected rule=underscore-name

match {"a": 1}:
    case {"a": 1, **__builtins__}:
        pass


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
