# tries: read a module's namespace with vars()
# expect: rejected rule=forbidden-name

import math
namespace = vars(math)


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
