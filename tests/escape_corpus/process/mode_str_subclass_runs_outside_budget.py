# tries: return (intent, mode) with a str subclass whose lower() the runner calls after act(), outside the act budget
# expect: runs
# config: max_steps=3


class Mode(str):
    def lower(self):
        while True:
            pass


def act(t, agent, world, fw, env, helpers):
    return (None, Mode("Push"))


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
