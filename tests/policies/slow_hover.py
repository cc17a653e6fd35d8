"""Holds its start position and spends about a millisecond of CPU in every act() call."""


def act(t, agent, world, fw, env, helpers):
    total = 0
    for i in range(20000):
        total += i
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": f"held for {ep_ctx['steps']} steps"}
