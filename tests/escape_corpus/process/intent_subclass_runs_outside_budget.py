# tries: return an ActionIntent subclass whose len() the runner calls after act(), outside the act budget
# expect: episode-reason=policy_error
# config: max_steps=3

import voxelsim as vxs


class Endless(vxs.ActionIntent):
    def len(self):
        while True:
            pass


def act(t, agent, world, fw, env, helpers):
    return Endless(1.0, 0.0, [vxs.MoveDir.Up])


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
