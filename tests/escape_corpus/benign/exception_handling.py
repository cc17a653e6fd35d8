# tries: try/except/else/finally with ordinary exception types
# expect: runs

def risky(i):
    if i % 3 == 0:
        raise ValueError("three")
    if i % 5 == 0:
        return {}["missing"]
    return [1, 2][i]


counts = {"ok": 0, "errors": 0}


def act(t, agent, world, fw, env, helpers):
    for i in range(6):
        try:
            risky(i)
        except (ValueError, KeyError, IndexError) as error:
            counts["errors"] += 1
        else:
            counts["ok"] += 1
        finally:
            pass
    try:
        1 / 0
    except ZeroDivisionError:
        pass
    return None


def collect(step_ctx):
    return {"errors": str(counts["errors"])}


def finalize(ep_ctx):
    assert counts["ok"] >= 0, "never negative"
    return {"summary": str(counts)}
