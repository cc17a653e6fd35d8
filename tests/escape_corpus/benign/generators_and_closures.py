# tries: generators, closures, nonlocal and lambdas
# expect: runs

def counter():
    count = 0

    def bump():
        nonlocal count
        count += 1
        return count
    return bump


def waypoints(start, n):
    x, y, z = start
    for i in range(n):
        yield [x + i, y, z]
    yield from ([x, y + j, z] for j in range(n))


tick = counter()


def act(t, agent, world, fw, env, helpers):
    tick()
    points = list(waypoints(agent.get_coord_py(), 3))
    nearest = min(points, key=lambda p: abs(p[0]) + abs(p[1]))
    return None


def collect(step_ctx):
    return {"ticks": str(tick() - 1)}


def finalize(ep_ctx):
    return {"summary": "ok"}
