import voxelsim as vxs


def act(t, agent, world, fw, env, helpers):
    return vxs.ActionIntent(0.0, 0.0, [vxs.MoveDir.Forward])


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}
