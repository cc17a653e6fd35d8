# tries: run code at class creation through metaclass=
# expect: rejected rule=class-keywords

def meta(name, bases, namespace):
    return namespace


class Probe(metaclass=meta):
    pass


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
