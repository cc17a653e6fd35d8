def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {}
