# tries: itertools helpers for candidate generation
# expect: runs

import itertools


def act(t, agent, world, fw, env, helpers):
    offsets = list(itertools.product((-1, 0, 1), repeat=3))
    pairs = list(itertools.pairwise(range(4)))
    firsts = list(itertools.islice(itertools.count(5), 3))
    combos = list(itertools.combinations("abc", 2))
    return None


def collect(step_ctx):
    return {"n": str(len(list(itertools.chain([1], [2, 3]))))}


def finalize(ep_ctx):
    return {"summary": "itertools"}
