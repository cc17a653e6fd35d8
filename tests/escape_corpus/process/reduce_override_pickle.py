# tries: define __reduce__ so unpickling in the parent runs code
# expect: rejected rule=underscore-name

class Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def collect(step_ctx):
    return {"payload": Payload()}


def act(t, agent, world, fw, env, helpers):
    return None


def finalize(ep_ctx):
    return {"summary": "done"}
