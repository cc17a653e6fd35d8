# tries: str.format with positional, named and format specs
# expect: runs
def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    x, y, z = step_ctx["agent_pos"]
    return {
        "pos": "({:.1f}, {:.1f}, {:.1f})".format(x, y, z),
        "named": "{name}={value:>8.3f}".format(name="d", value=step_ctx["distance_to_target"]),
        "pct": "{:.0%}".format(min(1.0, step_ctx["step"] / 30)),
        "padded": "{0:04d}|{0:x}".format(step_ctx["step"]),
    }


def finalize(ep_ctx):
    return {"summary": "{} steps, success={}".format(ep_ctx["steps"], ep_ctx["success"])}
