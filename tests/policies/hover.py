"""Does nothing: the agent holds its start position."""


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {"t": f"{step_ctx['t']:.2f}"}


def finalize(ep_ctx):
    return {"summary": f"hovered {ep_ctx['steps']} steps"}
