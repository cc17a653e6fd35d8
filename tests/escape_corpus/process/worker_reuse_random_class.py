# tries: patch the sandbox's random class and look for it in the next episode
# expect: runs
# seeds: 1 2
# config: max_steps=3

import random


def init(config):
    if hasattr(random.Random, "corpus_mark"):
        raise RuntimeError("state from a previous episode is visible")
    random.Random.corpus_mark = 1


def act(t, agent, world, fw, env, helpers):
    return None


def collect(step_ctx):
    return {}


def finalize(ep_ctx):
    return {"summary": "done"}
