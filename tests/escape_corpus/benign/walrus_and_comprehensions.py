# tries: walrus, nested comprehensions and dict/set comprehensions
# expect: runs

def act(t, agent, world, fw, env, helpers):
    grid = [[(x, y) for x in range(3)] for y in range(3)]
    flat = {cell for row in grid for cell in row if (s := sum(cell)) % 2 == 0}
    lookup = {cell: sum(cell) for cell in flat}
    if (n := len(lookup)) > 100:
        return None
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "ok"}
