# tries: crash the parent with lone surrogates in notes and the summary
# expect: episode-reason=max_steps
# config: max_steps=5


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {"text": chr(0xD800) + chr(0xDFFF)}


def finalize(ep_ctx):
    return {"summary": "broken " + chr(0xDC00)}
