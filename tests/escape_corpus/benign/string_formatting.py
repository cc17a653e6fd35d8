# tries: f-strings, % formatting and string methods
# expect: runs

def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    pos = step_ctx.get("agent_pos") or (0.0, 0.0, 0.0)
    line = "pos=%.1f,%.1f,%.1f" % tuple(pos)
    named = "%(steps)s steps" % {"steps": 3}
    parts = " | ".join([line, named, f"{pos[0]:>8.2f}", "A-B".lower().replace("-", "_")])
    return {"line": parts, "words": str("a b  c".split()), "upper": "ok".upper().center(6, "*")}


def finalize(ep_ctx):
    summary = f"success={ep_ctx.get('success')!r}, steps={ep_ctx.get('steps'):d}"
    return {"summary": summary.strip()}
