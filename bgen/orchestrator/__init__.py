"""The iteration side of bgen: prompts, evaluation and critique, the loop, the run's event log.

    prompt.py     system prompt; user prompts for a fresh policy, a refinement, a repair
    evaluator.py  aggregate.json and critique.txt from episode summaries (pure)
    loop.py       run_loop(): generate → check/repair → run episodes → evaluate → feed back
    runlog.py     EventLog: events.jsonl with run-unique ids
    iterate.py    the command line: python -m bgen.orchestrator.iterate
"""
