# tries: raise an exception whose text (Counter subclass repr -> most_common) runs policy code while the runner describes the error
# expect: episode-reason=policy_error
# config: max_steps=3

import collections


class Endless(collections.Counter):
    def most_common(self, n=None):
        while True:
            pass


def act(t, agent, world, fw, env, helpers):
    raise ValueError(Endless("ab"))


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
