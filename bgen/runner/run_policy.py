"""``python -m bgen.runner.run_policy``: run a policy file for N episodes and report.

    python -m bgen.runner.run_policy --policy my_policy.py --episodes 4 --target 60,60,-20
    python -m bgen.runner.run_policy --policy patrol.py --task-spec patrol.json

With ``--task-spec`` each episode is judged by the spec's checks (``bgen.runner.taskspec``) and
every check's result is printed under its episode line.

Prints one line per episode as it finishes, then a table. Episodes that fail (timeout,
policy_error, ...) are results, not errors: the exit status is 0. Bad flags and unreadable
policy files print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
from pathlib import Path

from bgen import defaults as D
from bgen.errors import ConfigError
from bgen.runner.episode import EpisodeConfig, cell_of, requested_points, spec_step_budget
from bgen.runner.executor import add_executor_arguments, executor_from_args
from bgen.runner.schema import REASONS
from bgen.runner import taskspec
from bgen.runner.taskspec import TaskSpecError, parse_task_spec

PROG = "run_policy"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message):
        raise ConfigError(message)


#: Flags whose value is a point: ``--target -10,5,-20`` must not read as a flag of its own.
POINT_FLAGS = ("--target", "--start")


def points_attached(argv: list[str], flags=POINT_FLAGS) -> list[str]:
    """``argv`` with a point that starts with ``-`` joined to its flag (``--target=-10,5,-20``):
    argparse takes ``-10,5,-20`` for an option, since it is not one plain negative number."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in flags and i + 1 < len(argv) and \
                re.fullmatch(r"-[\d.][\d.eE+\-]*(,[\d.eE+\-]+)+", argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _triple(text: str) -> tuple[float, float, float]:
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expects x,y,z (three numbers), actual: {text!r}")
    return values


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 2 or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expects WIDTHxHEIGHT, actual: {text!r}")
    return values


def _positive(kind, most=None):
    """An argparse type: a positive ``kind`` (at most ``most``), one-line error otherwise
    (a 400-digit number included)."""
    expected = f"a positive {kind.__name__}" + (f" up to {most:,}" if most else "")

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expects {expected}, actual: {text[:40]!r}") from None
        if not taskspec.is_finite_number(value) or not value > 0 or (most and value > most):
            raise argparse.ArgumentTypeError(f"expects {expected}, actual: {text[:40]!r}")
        return value
    parse.__name__ = kind.__name__
    return parse


def seed_number(text: str) -> int:
    """An argparse type for a first seed: an integer in 0..MAX_SEED (bgen.defaults)."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= D.MAX_SEED:
        raise argparse.ArgumentTypeError(f"expects an integer in 0..{D.MAX_SEED}, actual: {text[:40]!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Run a policy file against the simulator for N episodes.")
    p.add_argument("--policy", required=True, help="policy .py file (init/act/collect/finalize); required, no default")
    p.add_argument("--outdir", default="runs/bgen", help="output directory (default %(default)s)")
    p.add_argument("--episodes", type=_positive(int, 100_000), default=D.value("episodes"),
                   help=D.help_text("episodes", "episodes"))
    p.add_argument("--seed-start", type=seed_number, default=D.value("seed_start"),
                   help=D.help_text("seed_start", "first seed; episode i uses seed-start+i"))
    p.add_argument("--max-steps", type=_positive(int, taskspec.MAX_STEP_BUDGET),
                   default=D.value("max_steps"),
                   help=D.help_text("max_steps", "steps per episode"))
    p.add_argument("--delta", type=_positive(float), default=D.value("delta"),
                   help=D.help_text("delta", "seconds per step"))
    p.add_argument("--render", action="store_true", help="send world, agents and POV to the renderer")
    p.add_argument("--pov-size", type=_size, default=(200, 150), help="POV size WxH (default 200x150)")
    p.add_argument("--target", type=_triple, default=None,
                   help="target x,y,z (z negative is up); default: the scenario's")
    p.add_argument("--start", type=_triple, default=None,
                   help="start cell x,y,z; default: the scenario's")
    p.add_argument("--use-wind-farm", action="store_true", help="wind-farm scenario instead of terrain")
    px4 = p.add_mutually_exclusive_group()
    px4.add_argument("--px4", dest="px4", action="store_true", help="PX4 dynamics when available (default)")
    px4.add_argument("--no-px4", dest="px4", action="store_false", help="QuadDynamics")
    p.set_defaults(px4=True)
    p.add_argument("--backend", choices=("auto", "voxelsim", "embedded"), default="auto",
                   help="simulator backend (default auto: voxelsim when importable)")
    p.add_argument("--workers", type=_positive(int, 1024), default=D.value("workers"),
                   help=D.help_text("workers", "episodes in parallel"))
    p.add_argument("--act-budget-s", type=_positive(float), default=D.value("act_budget_s"),
                   help=D.help_text("act_budget_s", "wall-clock budget in seconds of each policy call"))
    p.add_argument("--episode-deadline-s", type=_positive(float), default=600.0,
                   help="wall-clock deadline of each episode (default 600)")
    p.add_argument("--memory-limit-mb", type=_positive(int, 1 << 20), default=2048,
                   help="address-space limit of each worker (default 2048)")
    add_executor_arguments(p)
    p.add_argument("--task-spec", default=None, metavar="FILE",
                   help="task spec JSON file: the checks each episode is judged by "
                        "(default: reach the target within 1.0 m)")
    return p


#: Largest task spec file read (bytes): the server's request body limit (a spec is a few KB;
#: /dev/zero is endless).
MAX_TASK_SPEC_BYTES = 1024 * 1024


def read_task_spec(path: str | None) -> dict | None:
    """The task spec document in ``path`` (validated), or None; ConfigError naming the file or
    the field (``task_spec.checks[1].radius: ...``)."""
    if path is None:
        return None
    try:
        with open(path, "rb") as spec_file:
            data = spec_file.read(MAX_TASK_SPEC_BYTES + 1)
        if len(data) > MAX_TASK_SPEC_BYTES:
            raise ConfigError(f"task spec file {str(path)!r}: larger than "
                              f"{MAX_TASK_SPEC_BYTES} bytes", field="task_spec")
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ConfigError(f"cannot read task spec file {str(path)!r}: {reason}",
                          field="task_spec") from None
    try:
        spec = parse_task_spec(text, prefix="task_spec")
    except TaskSpecError as error:
        raise ConfigError(f"task spec file {str(path)!r}: {error.message}",
                          field=error.field) from None
    return spec.to_dict()


def stale_episode_dirs(outdir: Path, seeds: list[int]) -> list[str]:
    """Names of the ``ep_<seed>`` folders in ``outdir`` whose seed this run does not fly
    (an earlier run's), in seed order."""
    try:
        names = [entry.name for entry in outdir.iterdir() if entry.is_dir()]
    except OSError:
        return []
    ours = {f"ep_{seed}" for seed in seeds}
    found = [name for name in names if re.fullmatch(r"ep_\d+", name) and name not in ours]
    return sorted(found, key=lambda name: int(name[3:]))


def check_lines(summary: dict) -> list[str]:
    """One line per task-spec check of a finished episode: pass/FAIL, score, account."""
    return [f"    {'pass' if c['passed'] else 'FAIL'} {taskspec.score_text(c['score'], c['passed'])}  "
            f"{c['account']}"
            for c in summary.get("checks") or []]


def config_from_args(args) -> EpisodeConfig:
    task_spec = read_task_spec(getattr(args, "task_spec", None))
    config = EpisodeConfig(task_spec=task_spec,
        max_steps=args.max_steps or taskspec.MIN_STEP_BUDGET, delta=args.delta, target=args.target,
        start=tuple(cell_of(args.start)) if args.start else None,
        scenario="wind_farm" if args.use_wind_farm else "terrain", render=args.render,
        pov_size=args.pov_size, use_px4=args.px4, backend=args.backend,
        act_budget_s=args.act_budget_s, episode_deadline_s=args.episode_deadline_s,
        memory_limit_mb=args.memory_limit_mb,
        world_cache_dir=str(Path(args.outdir).parent / "world-cache"))
    if args.max_steps is None:
        seeds = range(args.seed_start, args.seed_start + args.episodes)
        config = dataclasses.replace(config, max_steps=spec_step_budget(config, seeds)[0])
    return config


def _fmt(value, spec=".2f") -> str:
    return "-" if value is None else format(value, spec)


def lifted_note(summary: dict, requested_start, requested_target) -> str:
    """Where the episode moved a start or target that lay inside terrain, e.g. "target lifted to
    [60, 60, -25]"; empty when both were used as asked."""
    notes = []
    for name, asked in (("start", requested_start), ("target", requested_target)):
        used = summary.get(name)
        if asked is not None and used is not None and \
                [round(float(v), 3) for v in used] != [round(float(v), 3) for v in asked]:
            notes.append(f"{name} lifted to [{', '.join(format(float(v), 'g') for v in used)}]")
    return "; ".join(notes)


def episode_line(summary: dict, requested_start=None, requested_target=None) -> str:
    """One line per finished episode."""
    line = (f"seed {summary['seed']}: {summary['reason']:<12} steps {summary['steps']:>6}  "
            f"sim {summary['sim_time_s']:.2f} s  wall {summary['wall_time_s']:.2f} s  "
            f"dist {_fmt(summary.get('final_distance_to_target'))}  "
            f"collisions {summary['collisions_total']}")
    if summary["reason"] not in ("success", "max_steps") and summary.get("reasons"):
        line += f"  ({summary['reasons']})"
    note = lifted_note(summary, requested_start, requested_target)
    if note:
        line += f"  [{note} (inside terrain)]"
    return line


def results_table(summaries: list[dict], *, with_score: bool = False) -> str:
    """The final table: one row per episode, then totals (and the mean task-spec score)."""
    header = f"{'seed':>6}  {'reason':<12} {'steps':>6} {'sim_s':>8} {'wall_s':>7} " \
             f"{'dist':>7} {'min_dist':>8} {'path':>7} {'coll':>5}"
    rows = [header, "-" * len(header)]
    for s in summaries:
        rows.append(f"{s['seed']:>6}  {s['reason']:<12} {s['steps']:>6} {s['sim_time_s']:>8.2f} "
                     f"{s['wall_time_s']:>7.2f} {_fmt(s.get('final_distance_to_target')):>7} "
                     f"{_fmt(s.get('min_distance_to_target')):>8} {_fmt(s.get('path_len_est')):>7} "
                     f"{s['collisions_total']:>5}")
    wins = sum(1 for s in summaries if s["success"])
    scores = [s["score"] for s in summaries if isinstance(s.get("score"), (int, float))]
    counts = {r: sum(1 for s in summaries if s["reason"] == r) for r in REASONS}
    rows.append("-" * len(header))
    rows.append(f"success {wins}/{len(summaries)}  " +
                "  ".join(f"{r} {n}" for r, n in counts.items() if n) +
                (f"  mean score {sum(scores) / len(scores):.2f}" if scores and with_score else ""))
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(points_attached(sys.argv[1:] if argv is None else list(argv)))
        config = config_from_args(args)
        path = Path(args.policy)
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise ConfigError(f"cannot read policy file {str(path)!r}: {reason}") from None
    except ConfigError as error:
        print(f"{PROG}: error: {error.message}", file=sys.stderr)
        return 2

    seeds = [args.seed_start + i for i in range(args.episodes)]
    outdir = Path(args.outdir)

    def on_event(event: dict) -> None:
        if event["type"] == "episode_summary":
            print(episode_line(event, *requested_points(config, event["seed"])), flush=True)
            if config.task_spec is not None:
                print("\n".join(check_lines(event)), flush=True)
        elif event["type"] == "warning":
            print(f"seed {event['seed']}: warning: {event['message']}", file=sys.stderr, flush=True)

    try:
        executor = executor_from_args(args, workers=args.workers)
    except ConfigError as error:
        print(f"{PROG}: error: {error.message}", file=sys.stderr)
        return 2
    from bgen.runner.isolation import cached_report, report_line
    print(report_line(cached_report(config.render)), file=sys.stderr, flush=True)
    stale = stale_episode_dirs(outdir, seeds)
    if stale:
        shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
        print(f"{PROG}: warning: {outdir} holds episode folders of other seeds from an earlier "
              f"run ({shown}); they are left as they are", file=sys.stderr, flush=True)
    if config.task_spec is not None:     # a derived budget falls short only at its cap
        shortfall = taskspec.budget_warning(taskspec.parse_task_spec(config.task_spec),
                                            spec_step_budget(config, seeds)[1],
                                            config.max_steps, config.delta)
        if shortfall:
            print(f"{PROG}: warning: {shortfall}", file=sys.stderr, flush=True)
    try:
        summaries = executor.run_episodes(source, seeds, config, outdir, workers=args.workers,
                                          on_event=on_event, step_events=False)
    except ConfigError as error:
        print(f"{PROG}: error: {error.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    finally:
        executor.close()
    print()
    print(results_table(summaries, with_score=config.task_spec is not None))
    print(f"files: {outdir}/ep_<seed>/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
