# tries: reach a frame through an exception's __traceback__
# expect: rejected rule=frame-attribute

try:
    1 / 0
except ZeroDivisionError as error:
    frame = error.__traceback__.tb_frame


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
