# tries: random exploration with the seeded random module
# expect: runs

import random

import voxelsim as vxs

CHOICES = [vxs.MoveDir.Forward, vxs.MoveDir.Left, vxs.MoveDir.Right, vxs.MoveDir.Up]
rng = random.Random(3)


def init(config):
    random.seed(config.get("seed", 0))


def act(t, agent, world, fw, env, helpers):
    if agent.get_action_py() is None:
        moves = [random.choice(CHOICES) for _ in range(random.randint(1, 3))]
        return helpers.intent(random.uniform(0.3, 0.9), rng.random() * 0.1, moves)
    return None


def collect(step_ctx):
    return {"r": f"{random.random():.3f}"}


def finalize(ep_ctx):
    sample = random.sample(range(10), 3)
    random.shuffle(sample)
    return {"summary": f"sample={sorted(sample)}"}
