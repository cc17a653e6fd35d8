# tries: from numpy import lib: CPython retries missing names in sys.modules
# expect: load-error rule=import

from numpy import lib

lib.npyio.os.system("touch @CANARY@")


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
