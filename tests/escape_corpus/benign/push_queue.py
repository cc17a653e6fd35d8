# tries: queue short intents behind the current action with Push
# expect: runs

import voxelsim as vxs

MOVES = [vxs.MoveDir.Forward, vxs.MoveDir.Right, vxs.MoveDir.Back, vxs.MoveDir.Left]


def act(t, agent, world, fw, env, helpers):
    step = int(round(t * 100))
    if step % 10 == 0:
        move = MOVES[(step // 10) % len(MOVES)]
        return helpers.intent(0.5, 0.0, [move, move]), "Push"
    return None


def collect(step_ctx):
    return {"t": f"{step_ctx.get('t', 0):.2f}"}


def finalize(ep_ctx):
    return {"summary": "square pattern"}
