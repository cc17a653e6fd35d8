# tries: read a closure cell through __closure__
# expect: rejected rule=underscore-name

def outer():
    secret = 1

    def inner():
        return secret
    return inner

value = outer().__closure__[0].cell_contents


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
