# tries: trip a backend panic (a BaseException) from act()
# expect: episode-reason=policy_error
# config: max_steps=5

import voxelsim as vxs


def act(t, agent, world, fw, env, helpers):
    return vxs.ActionIntent(0.0, 0.0, [vxs.MoveDir.Up])


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
