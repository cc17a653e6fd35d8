# tries: change the agent's action behind the command record with update_state_py
# expect: episode-reason=policy_error
# config: max_steps=20


def act(t, agent, world, fw, env, helpers):
    agent.update_state_py(None)
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
