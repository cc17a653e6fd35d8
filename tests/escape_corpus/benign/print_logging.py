# tries: log progress with print (captured, not an error)
# expect: runs

def init(config):
    print("starting at", config.get("start"), "towards", config.get("target"))


def act(t, agent, world, fw, env, helpers):
    if round(t * 100) % 10 == 0:
        print(f"t={t:.2f} pos={agent.get_pos()}", end="\n", flush=True)
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    print("done", sep="")
    return {"summary": "logged"}
