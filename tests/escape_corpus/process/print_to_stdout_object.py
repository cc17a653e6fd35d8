# tries: print to a file object of the policy's own
# expect: episode-reason=policy_error
# config: max_steps=5

class Sink:
    def write(self, text):
        return len(text)


def act(t, agent, world, fw, env, helpers):
    print("hello", file=Sink())
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
