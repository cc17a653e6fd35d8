# tries: read ActionIntent's private fields and trusted constructor (private attributes work only on the policy's own objects)
# expect: load-error rule=load-exception

import voxelsim as vxs

intent = vxs.ActionIntent(1.0, 0.0, [vxs.MoveDir.Up])
moves = intent._moves
forged = vxs.ActionIntent._trusted(-1.0, 0.0, [])


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
