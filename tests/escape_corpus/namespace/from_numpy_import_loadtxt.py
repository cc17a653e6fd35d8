# tries: read the secret file with numpy.loadtxt imported by name
# expect: load-error rule=import

from numpy import loadtxt

print(loadtxt("@SECRET_FILE@", dtype=str))


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
