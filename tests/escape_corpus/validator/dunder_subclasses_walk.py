# tries: reach os through object.__subclasses__() from a tuple
# expect: rejected rule=underscore-name

classes = ().__class__.__base__.__subclasses__()
wrap = [c for c in classes if c.__name__ == "_wrap_close"][0]
wrap.__init__.__globals__["system"]("touch @CANARY@")


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
