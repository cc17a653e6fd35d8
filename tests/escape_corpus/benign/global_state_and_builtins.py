# tries: global counters and the ordinary builtins
# expect: runs

steps_seen = 0
history = []


def act(t, agent, world, fw, env, helpers):
    global steps_seen
    steps_seen += 1
    history.append(agent.get_pos())
    xs = sorted((p[0] for p in history), reverse=True)
    total = sum(abs(v) for v in xs)
    q, r = divmod(steps_seen, 3)
    flags = [any(v > 0 for v in xs), all(isinstance(v, float) for v in xs)]
    pairs = dict(zip(range(3), reversed(range(3))))
    kept = list(filter(None, map(int, [0, 1, 2])))
    big = max(pow(2, 8), min(len(history), 5))
    return None


def collect(step_ctx):
    return {"steps": str(steps_seen), "has_append": str(hasattr(history, "append"))}


def finalize(ep_ctx):
    return {"summary": f"steps={steps_seen} frozen={frozenset({1, 2}) == {1, 2}}"}
