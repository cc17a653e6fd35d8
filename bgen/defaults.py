"""The defaults shared by ``iterate``, ``run_policy`` and the server, in one table.

Every command line takes its defaults and the way ``--help`` shows them from ``DEFAULTS``;
the server's ``POST /run`` fields take theirs from the same entries, and README.md and the
docs/ flag tables show the same text (``tests/test_defaults.py`` fails when any of them
differs). This module imports nothing from bgen, so every layer may use it.

Choices worth knowing:

* ``success_threshold`` 0.95 on every front door: the reference server's value. With fewer
  than 20 episodes it means "every episode succeeded" (as 1.0 would); with more, one failure
  in twenty does not keep a run iterating for a flaky seed.
* ``max_steps`` None on the command lines: the step budget follows the task spec's route (the
  distance through its points at the cruise speed of urgency 0.9, with margin), never below
  5000 steps. The server's ``POST /run`` does the same for a run judged by a task spec or an
  LLM spec; a ``policy_code`` run without a spec keeps the reference's ``duration_seconds`` 30.
* ``workers`` None: one worker process per core (``os.cpu_count()``), decided by the runner.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class Default:
    """One default: its value, and ``shown`` — how ``--help`` and the docs write it."""

    value: object
    shown: str
    meaning: str


DURATION_S = 30.0
DELTA_S = 0.01
MODELS = {"anthropic": "claude-3-5-sonnet-20241022", "openai": "gpt-4o-mini"}

DEFAULTS: dict[str, Default] = {
    "iterations": Default(1, "1", "generate, run, critique rounds"),
    "episodes": Default(3, "3", "episodes per iteration (run_policy: episodes)"),
    "seed_start": Default(0, "0", "first episode seed; episode i uses seed_start + i"),
    "max_steps": Default(None, "from the task spec's route, at least 5000",
                         "steps per episode: the task spec's route at cruise speed with margin"),
    "delta": Default(DELTA_S, "0.01", "simulated seconds per step"),
    "success_threshold": Default(0.95, "0.95", "success rate that ends a run early"),
    "workers": Default(None, "number of cores", "episode worker processes at once"),
    "act_budget_s": Default(2.0, "2", "wall-clock seconds per policy call"),
    "candidates": Default(1, "1", "policies generated per iteration"),
    "holdout_seeds": Default(0, "0", "unseen seeds for the best policy at the end"),
    "max_repairs": Default(2, "2", "LLM repairs of a policy that fails to load"),
    "provider": Default("anthropic", "anthropic", "LLM wire API"),
    "model": Default(None, f"{MODELS['anthropic']} (anthropic), {MODELS['openai']} (openai)",
                     "the model, per provider"),
    "max_tokens": Default(2400, "2400", "the LLM's reply budget in tokens"),
    "temperature": Default(0.2, "0.2", "sampling temperature"),
    "api_key_env": Default("LLVPN_API_KEY", "LLVPN_API_KEY",
                           "environment variable holding the LLM provider key"),
    "llm_timeout": Default(120.0, "120", "seconds per LLM request"),
    "llm_retries": Default(4, "4", "retries of a failed LLM request"),
    "llm_backoff_cap": Default(30.0, "30", "longest wait in seconds between LLM retries"),
    "executor": Default("local", "local", "where episodes run"),
}


#: Seeds are 32-bit, as numpy's generators take them: every front door's limit.
MAX_SEED = 2**32 - 1

#: Bytes a run's folder may hold (steps, traces, policies, critiques) unless its front door is
#: told otherwise (``iterate --max-run-gb``, ``bgen_server.py --max-run-gb``): 8 GiB. The
#: loop starts no iteration that could pass it and caps each episode's records at its share.
MAX_RUN_BYTES = 8 * 1024**3


def run_gigabytes(text: str) -> int:
    """``--max-run-gb``'s argparse type: its value (GiB, 0.001..1,048,576) in bytes, or
    ``argparse.ArgumentTypeError`` naming the range."""
    try:
        gigabytes = float(text)
    except ValueError:
        gigabytes = float("nan")
    if not 0.001 <= gigabytes <= 1024**2:
        raise argparse.ArgumentTypeError(f"expects a number of GiB in 0.001..1048576, "
                                         f"actual: {text!r}")
    return int(gigabytes * 1024**3)


def value(name: str):
    """The default value of ``name`` (a key of ``DEFAULTS``); KeyError for an unknown name."""
    return DEFAULTS[name].value


def shown(name: str) -> str:
    """How ``--help`` and the docs write the default of ``name``."""
    return DEFAULTS[name].shown


def help_text(name: str, meaning: str) -> str:
    """``meaning`` followed by ``(default <shown>)``: the help of a flag with a table default."""
    return f"{meaning} (default {shown(name)})"
