"""Holds its start and claims success everywhere it can speak: in collect() and finalize()."""


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {"success": "true", "reason": "success", "passed": "all", "score": "1.0"}


def finalize(ep_ctx):
    return {"summary": "success: every check passed", "success": "true", "score": "1.0",
            "checks": "all passed"}
