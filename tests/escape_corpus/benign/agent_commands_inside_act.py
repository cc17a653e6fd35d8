# tries: commands given through agent methods inside act() instead of returning them
# expect: runs
import voxelsim

STARTED = []


def act(t, agent, world, fw, env, helpers):
    if not STARTED:
        STARTED.append(t)
        agent.perform_oneshot_py(helpers.intent(1.0, 0.0, [voxelsim.MoveDir.Forward]))
        agent.push_back_intent_py(voxelsim.ActionIntent(1.0, 0.0, [voxelsim.MoveDir.Right]))
    return None


def collect(step_ctx):
    return {"started": str(bool(STARTED))}


def finalize(ep_ctx):
    return {"summary": "queued two intents through the agent"}
