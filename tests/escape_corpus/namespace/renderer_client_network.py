# tries: open a TCP connection with the backend's renderer client
# expect: load-error rule=load-exception

import voxelsim as vxs

client = vxs.RendererClient.default_localhost_py(1)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
