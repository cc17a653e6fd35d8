"""``python -m bgen.bench render``: what rendering costs, frame by frame and per episode.

    python -m bgen.bench render [--size 200] [--seed 0] [--steps 3000] [--repeat 3]
                                [--backend auto]

1. Frames: the terrain world of ``--seed`` and ``--size`` (the standard world: seed 0, size
   200) encoded as the world port's payload, decoded again, and turned into each render
   WebSocket message the server offers (``?format=base64``, ``json``); an agents frame of an
   agent flying an A* plan likewise.
2. The standard episode of ``bgen.bench.runner`` (A* from the terrain start to [60, 60, -20],
   delta 0.01) run in this process twice per round: headless, and rendered to four local TCP
   listeners (world, agents, POV world 0, POV agents 0) that count the frames they receive.
   It reports steps/s, frames per second of wall time per channel and the wall-time ratio
   rendered / headless (the cost rendering adds). The world is built before the clock starts;
   the listeners are threads of this process that only count bytes.

Medians of ``--repeat`` runs. It prints what it measured and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import struct
import sys
import threading
import time
from dataclasses import dataclass, field, replace

import bgen_server
from bgen.sim.embedded import wire

CHANNELS = ("world", "agents", "pov_world_0", "pov_agents_0")
LONG_FLIGHT_TARGET = (150, 150, -20)       # about 140 m from the start: longer than 3000 steps
JOIN_TIMEOUT_S = 30.0     # a listener still reading after the episode's client closed


# ----------------------------------------------------------------------------- counting frames

class FrameCount:
    """Sans-I/O: fed a byte stream of ``[u32 LE length][payload]`` frames, counts whole frames.

    Only lengths are read, payloads are skipped, so counting a 700 KB world frame costs a few
    Python operations per received chunk.
    """

    def __init__(self):
        self.frames = 0
        self.bytes = 0
        self._header = b""     # the part of a length prefix received so far
        self._skip = 0         # payload bytes of the current frame still to come

    def feed(self, data: bytes) -> None:
        self.bytes += len(data)
        at, size = 0, len(data)
        while at < size:
            if self._skip:
                taken = min(self._skip, size - at)
                self._skip -= taken
                at += taken
                if not self._skip:
                    self.frames += 1
                continue
            need = 4 - len(self._header)
            self._header += data[at:at + need]
            at += need
            if len(self._header) == 4:
                (self._skip,) = struct.unpack("<I", self._header)
                self._header = b""
                if not self._skip:
                    self.frames += 1


class CountingListeners:
    """Four listening sockets on 127.0.0.1 standing in for the renderer; one thread each
    (daemon: a sender that never closes must not keep the process alive) accepts one
    connection and counts its frames until it closes."""

    def __init__(self, host: str = "127.0.0.1"):
        self.servers = [socket.create_server((host, 0)) for _ in CHANNELS]
        self.counts = {channel: FrameCount() for channel in CHANNELS}
        self.threads = [threading.Thread(target=self._serve, args=(channel, server),
                                         name=f"count-{channel}", daemon=True)
                        for channel, server in zip(CHANNELS, self.servers)]
        for thread in self.threads:
            thread.start()

    @property
    def ports(self) -> tuple[int, int, int, int]:
        return tuple(server.getsockname()[1] for server in self.servers)

    def _serve(self, channel: str, server: socket.socket) -> None:
        try:
            conn, _ = server.accept()
        except OSError:          # closed before anyone connected
            return
        count = self.counts[channel]
        with conn:
            while True:
                try:
                    data = conn.recv(1 << 20)
                except OSError:
                    return
                if not data:
                    return
                count.feed(data)

    def finish(self, timeout_s: float = JOIN_TIMEOUT_S) -> dict:
        """Stop listening, wait for the senders' streams to end; frames per channel."""
        for server in self.servers:
            server.close()
        deadline = time.monotonic() + timeout_s
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return {channel: count.frames for channel, count in self.counts.items()}


class TrackedBackend:
    """The backend, with every RendererClient an episode opens kept so the bench can close it
    (the episode leaves its client to be collected; the listeners need the end of stream)."""

    def __init__(self, vxs):
        self._vxs = vxs
        self.clients: list = []

    def __getattr__(self, name):
        return getattr(self._vxs, name)

    def RendererClient(self, *args):  # noqa: N802 - voxelsim's name
        client = self._vxs.RendererClient(*args)
        self.clients.append(client)
        return client

    def close_clients(self) -> None:
        for client in self.clients:
            close = getattr(client, "close", None)   # voxelsim's client closes when dropped
            if close is not None:
                close()
        self.clients.clear()


# ----------------------------------------------------------------------------- frames

def median_time(function, repeat: int) -> float:
    times = []
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def terrain(vxs, seed: int, size: int):
    """The terrain scenario's world for ``seed``, at world size ``size`` (the scenario's is 200)."""
    cfg = vxs.TerrainConfig.default_py()
    cfg.set_world_size_py(int(size))
    cfg.set_seed_py(int(seed) & 0xFFFF_FFFF)
    generator = vxs.TerrainGenerator()
    generator.generate_terrain_py(cfg)
    return generator.generate_world_py()


def flying_agent(vxs, world, start, target):
    """An agent at ``start`` performing the A* plan to ``target`` (holding if there is none)."""
    agent = vxs.Agent(0)
    agent.set_hold_py([int(v) for v in start], 0.0)
    try:
        intent = vxs.AStarActionPlanner(1).plan_action_py(
            world, agent.get_coord_py(), [int(round(v)) for v in target], 1.0, 0.0)
        agent.perform_oneshot_py(intent)
    except Exception:      # noqa: BLE001 - no route: the frame of a holding agent is measured
        pass
    return agent


def frame_rows(vxs, seed: int, size: int, repeat: int) -> list[str]:
    lines = []
    started = time.perf_counter()
    world = terrain(vxs, seed, size)
    built = time.perf_counter() - started
    payload = wire.encode_world(world)
    decoded = wire.decode_world(payload)
    lines.append(f"world frame: terrain seed {seed}, size {size}: {decoded.bits.size:,} cells, "
                 f"payload {len(payload):,} B (world built in {built * 1000:.0f} ms)")
    rows = [("encode (wire.encode_world)", median_time(lambda: wire.encode_world(world), repeat),
             len(payload)),
            ("decode (wire.decode_world)", median_time(lambda: wire.decode_world(payload), repeat),
             None),
            ("?format=base64 message (base64 + JSON)",
             median_time(lambda: bgen_server.base64_frame_message("world", payload, 0.0), repeat),
             len(bgen_server.base64_frame_message("world", payload, 0.0))),
            ("?format=json message (decode + JSON)",
             median_time(lambda: bgen_server.decoded_frame_message("world", payload, 0.0), repeat),
             len(bgen_server.decoded_frame_message("world", payload, 0.0)))]
    cells = json.dumps(wire.to_jsonable(decoded), separators=(",", ":"))
    rows.append(("  for comparison: decode + one [x,y,z,bits] list per cell",
                 median_time(lambda: json.dumps(wire.to_jsonable(wire.decode_world(payload)),
                                                separators=(",", ":")), repeat), len(cells)))
    lines += [f"  {name:<58} {seconds * 1000:8.1f} ms" + (f"  {size_:>11,} B" if size_ else "")
              for name, seconds, size_ in rows]

    from bgen.sim import scenarios
    start, target = (scenarios.place_above_obstacles(world, list(point))
                     for point in (scenarios.TERRAIN_START, scenarios.TERRAIN_TARGET))
    agent = flying_agent(vxs, world, start, target)
    agents = {0: agent}
    payload = wire.encode_agents(agents)
    state = "flying an A* plan" if agent.get_action_py() is not None else "holding (no plan)"
    lines.append(f"agents frame: one agent {state}: payload {len(payload):,} B")
    rows = [("encode (wire.encode_agents)",
             median_time(lambda: wire.encode_agents(agents), repeat * 20), None),
            ("decode (wire.decode_agents)",
             median_time(lambda: wire.decode_agents(payload), repeat * 20), None),
            ("?format=base64 message (base64 + JSON)",
             median_time(lambda: bgen_server.base64_frame_message("agents", payload, 0.0), repeat * 20),
             len(bgen_server.base64_frame_message("agents", payload, 0.0))),
            ("?format=json message (decode + JSON)",
             median_time(lambda: bgen_server.decoded_frame_message("agents", payload, 0.0), repeat * 20),
             len(bgen_server.decoded_frame_message("agents", payload, 0.0)))]
    lines += [f"  {name:<58} {seconds * 1e6:8.0f} µs" + (f"  {size_:>11,} B" if size_ else "")
              for name, seconds, size_ in rows]
    return lines


# ----------------------------------------------------------------------------- episodes

@dataclass
class EpisodeRun:
    wall_s: float
    steps: int
    reason: str
    frames: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)


class _Sink:
    """Keeps warnings only (a renderer that was not reached is a warning)."""

    def __init__(self):
        self.warnings: list[str] = []

    def step(self, log):
        pass

    def warning(self, message):
        self.warnings.append(message)

    def phase(self, name):
        pass


def run_standard(vxs, config, seed: int) -> EpisodeRun:
    """One episode of the standard policy, headless or rendered as ``config.render`` says;
    building the world (and the vision renderer) is not timed."""
    from bgen.bench.runner import STANDARD_POLICY
    from bgen.runner.episode import build_sim, run_episode

    listeners = CountingListeners() if config.render else None
    if listeners is not None:
        config = replace(config, render_ports=listeners.ports)
    backend = TrackedBackend(vxs)
    sim = build_sim(vxs, config, seed)
    sim.vxs = backend
    sink = _Sink()
    started = time.perf_counter()
    try:
        outcome = run_episode(STANDARD_POLICY, vxs, config, seed, sink, sim=sim)
        wall = time.perf_counter() - started
    finally:
        backend.close_clients()
        frames = listeners.finish() if listeners is not None else {}
    summary = outcome.summary
    return EpisodeRun(wall_s=wall, steps=summary.steps, reason=summary.reason, frames=frames,
                      warnings=sink.warnings)


@dataclass
class Round:
    """The standard episodes of one round, headless or rendered: totals over the seeds."""

    wall_s: float = 0.0
    steps: int = 0
    frames: dict = field(default_factory=dict)
    reasons: list = field(default_factory=list)
    warnings: set = field(default_factory=set)

    def add(self, run: EpisodeRun) -> None:
        self.wall_s += run.wall_s
        self.steps += run.steps
        self.reasons.append(run.reason)
        self.warnings.update(run.warnings)
        for channel, count in run.frames.items():
            self.frames[channel] = self.frames.get(channel, 0) + count


@dataclass(frozen=True)
class Workload:
    name: str
    config: object          # EpisodeConfig, headless
    seeds: tuple


def workloads(backend: str, steps: int, seeds: list) -> list[Workload]:
    """The standard episodes (they end at the target after a few hundred steps), and one long
    flight across the map (it runs every step: the rates it sustains)."""
    from bgen.bench.runner import standard_config

    standard = standard_config(backend, steps)
    return [Workload("standard", standard, tuple(seeds)),
            Workload("long flight", replace(standard, target=LONG_FLIGHT_TARGET), (seeds[0],))]


def episode_rows(vxs, backend: str, steps: int, seeds: list, repeat: int) -> list[str]:
    loads = workloads(backend, steps, seeds)
    rendered_config = replace(loads[0].config, render=True)
    lines = [f"episodes (in this process, setup untimed): POV {rendered_config.pov_size[0]}x"
             f"{rendered_config.pov_size[1]} at most every {rendered_config.pov_min_dt_world} s "
             f"simulated; world at connect and every wall second; agents every step"]
    results = []
    for load in loads:
        headless, rendered = [], []
        for _ in range(max(1, repeat)):
            for rounds, config in ((headless, load.config), (rendered, replace(load.config, render=True))):
                totals = Round()
                for seed in load.seeds:
                    totals.add(run_standard(vxs, config, seed))
                rounds.append(totals)
        results.append((load, headless, rendered))
        first = rendered[0]
        reasons = ", ".join(f"{r} {first.reasons.count(r)}" for r in sorted(set(first.reasons)))
        seed_text = (f"seeds {load.seeds[0]}..{load.seeds[-1]}" if len(load.seeds) > 1
                     else f"seed {load.seeds[0]}")
        lines.append(f"  {load.name}: A* {list(load.config.start)} -> {list(load.config.target)}, "
                     f"terrain {seed_text}, delta {load.config.delta}, max {steps} steps: {reasons}; "
                     f"{first.steps} steps")
    lines.append(f"  {'':<12} {'headless':>17}  {'rendered':>17}  {'':>6}   rendered, frames per wall second")
    lines.append(f"  {'workload':<12} {'wall s':>8} {'steps/s':>8}  {'wall s':>8} {'steps/s':>8}  "
                 f"{'ratio':>6}   " + " ".join(f"{c:>12}" for c in CHANNELS))
    for load, headless, rendered in results:
        head = statistics.median(r.wall_s for r in headless)
        rend = statistics.median(r.wall_s for r in rendered)
        steps_done = rendered[0].steps
        per_second = [f"{statistics.median(r.frames.get(c, 0) / r.wall_s for r in rendered):12.1f}"
                      for c in CHANNELS]
        lines.append(f"  {load.name:<12} {head:8.2f} {headless[0].steps / head:8,.0f}  {rend:8.2f} "
                     f"{steps_done / rend:8,.0f}  {rend / head:5.1f}x   " + " ".join(per_second))
    for load, _, rendered in results:
        totals = ", ".join(f"{c} {rendered[0].frames.get(c, 0)}" for c in CHANNELS)
        lines.append(f"  frames received, {load.name}, first round: {totals}")
    for warning in sorted(set().union(*(r.warnings for _, _, rounds in results for r in rounds))):
        lines.append(f"  warning: {warning}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bgen.bench render",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200, help="terrain world size of the frame figures")
    parser.add_argument("--seed", type=int, default=0, help="terrain seed (default 0)")
    parser.add_argument("--steps", type=int, default=3000, help="max steps of the standard episode")
    parser.add_argument("--episodes", type=int, default=8,
                        help="standard episodes per round, terrain seeds from --seed (default 8)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--backend", default="auto", help="simulator backend (default auto)")
    args = parser.parse_args(argv)
    if min(args.size, args.steps, args.episodes, args.repeat) < 1:
        parser.error("--size, --steps, --episodes and --repeat expect positive integers")

    from bgen.sim import backend_label, load_backend
    vxs = load_backend(args.backend)
    from bgen.machine import machine_line
    print(machine_line())
    print(f"render benchmark: backend {backend_label(vxs)}, {os.cpu_count()} cores, "
          f"median of {args.repeat}")
    for line in frame_rows(vxs, args.seed, args.size, args.repeat):
        print(line)
    seeds = list(range(args.seed, args.seed + args.episodes))
    for line in episode_rows(vxs, args.backend, args.steps, seeds, args.repeat):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
