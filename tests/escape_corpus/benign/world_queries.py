# tries: query the world: collisions and a dense snapshot around the drone
# expect: runs

def act(t, agent, world, fw, env, helpers):
    hits = world.collisions_py(agent.get_pos(), [0.5, 0.5, 0.3])
    if hits:
        return helpers.intent(0.5, 0.0, [helpers_up()])
    return None


def helpers_up():
    import voxelsim
    return voxelsim.MoveDir.Up


def collect(step_ctx):
    return {"collisions": str(step_ctx.get("collisions_count"))}


def finalize(ep_ctx):
    return {"summary": "queried"}
