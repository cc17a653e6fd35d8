"""Five cells forward, then five cells right, queued with the mode named in MODE."""
import voxelsim as vxs

MODE = "Push"


def act(t, agent, world, fw, env, helpers):
    step = int(round(t / 0.01))
    if step == 0:
        return vxs.ActionIntent(1.0, 0.0, [vxs.MoveDir.Forward] * 5)
    if step == 1:
        return vxs.ActionIntent(1.0, 0.0, [vxs.MoveDir.Right] * 5), MODE
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "queued"}
