"""RendererClient and AsyncRendererClient: TCP to the Bevy renderer, as voxelsim connects.

    RendererClient(host, world_port, agent_port, pov_start_port, pov_agent_start_port, pov_count)
      ├── world stream       host:world_port            VoxelGrid frames   (send_world_py)
      ├── agent stream       host:agent_port            agent-map frames   (send_agents_py)
      └── pov_count × PovStream
            ├── virtual world  host:pov_start_port+i       PovData frames   (FilterWorld.send_pov_py)
            └── agents         host:pov_agent_start_port+i agent-map frames (every send_agents_py)

    AsyncRendererClient  wraps one RendererClient; sends are snapshotted by the caller and
                         written by one daemon thread from bounded per-stream queues.

Every frame is ``[u32 LE payload length][bincode payload]`` (see ``wire.py``).

As in voxelsim (``voxelsim/src/network.rs``, ``py.rs``):

* the constructor connects at once, world port first, then the agent port, then each pov
  pair in order; a refused world/agent connection raises
  ``Exception("Failed to create render client: Connection refused (os error 111)")``, a pov
  pair that cannot be connected raises ``"... : Could not connect pov/agent stream for agent
  <i>"``. Streams already opened are closed again.
* ``send_world_py`` / ``send_agents_py`` raise ``Exception("Failed to send world: <os error>")``
  / ``"Failed to send agents: …"``; agents go to the agent port and then to every pov agent
  port.
* ``AsyncRendererClient`` never raises on send; failures are dropped silently.

Where we knowingly differ: the embedded client bounds connects by ``connect_timeout`` and
writes by ``send_timeout`` (voxelsim blocks for as long as the OS does); a frame is written
with one ``sendall`` under a per-stream lock, so concurrent senders never interleave bytes;
the async client keeps at most ``queue_size`` pending frames per stream and drops the oldest
(voxelsim spawns one thread per send, unbounded). ``close()`` is ours (voxelsim closes on drop).
"""

from __future__ import annotations

import socket
import threading
from collections import deque

from bgen.sim.embedded import wire
from bgen.sim.embedded.convert import to_dict, to_instance, to_int
from bgen.sim.embedded.convert import SealedInstances

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORTS = (8080, 8081, 8090, 9090)  # world, agents, first pov world, first pov agents


def os_error_text(error: BaseException) -> str:
    """An OSError worded as Rust's ``std::io::Error`` displays it."""
    if isinstance(error, socket.gaierror):
        return f"failed to lookup address information: {error.strerror}"
    if isinstance(error, (socket.timeout, TimeoutError)) and not error.errno:
        return "timed out"
    if isinstance(error, OSError) and error.errno is not None and error.strerror:
        return f"{error.strerror} (os error {error.errno})"
    return str(error)


def _to_str(value, arg: str) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"argument '{arg}': '{type(value).__name__}' object cannot be converted "
                    f"to 'PyString'")


class _Stream:
    """One connected socket and the lock that keeps each frame's bytes together."""

    __slots__ = ("sock", "lock", "address")

    def __init__(self, sock: socket.socket, address: tuple):
        self.sock = sock
        self.lock = threading.Lock()  # one frame at a time on this socket
        self.address = address

    def send_frame(self, payload: bytes) -> None:
        data = wire.frame(payload)
        with self.lock:
            self.sock.sendall(data)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class _ClientError(Exception):
    """Internal: a failure already worded as voxelsim's inner error."""


class RendererClient(SealedInstances):
    """Blocking client: each send writes its frame before returning."""

    connect_timeout = 10.0  # seconds; voxelsim has none (the OS decides)
    send_timeout = 30.0     # seconds per frame; a renderer that stops reading fails the send

    def __init__(self, host, world_port, agent_port, pov_start_port, pov_agent_start_port,
                 pov_count):
        host = _to_str(host, "host")
        ports = [to_int(v, name, "u16") for v, name in (
            (world_port, "world_port"), (agent_port, "agent_port"),
            (pov_start_port, "pov_start_port"), (pov_agent_start_port, "pov_agent_start_port"),
            (pov_count, "pov_count"))]
        self._host = host
        self._world_port, self._agent_port, self._pov_start_port, self._pov_agent_start_port = \
            ports[:4]
        self._world: _Stream | None = None
        self._agents: _Stream | None = None
        self._povs: list[tuple[_Stream, _Stream]] = []  # (virtual world, agents) per pov index
        try:
            self._connect(ports[4])
        except _ClientError as error:
            self.close()
            raise Exception(f"Failed to create render client: {error}") from None

    @staticmethod
    def default_localhost_py(pov_count):
        pov_count = to_int(pov_count, "pov_count", "u16")
        return RendererClient(DEFAULT_HOST, *DEFAULT_PORTS, pov_count)

    # --- connecting --------------------------------------------------------------------
    def _open(self, port: int) -> _Stream:
        try:
            sock = socket.create_connection((self._host, port), timeout=self.connect_timeout)
        except OSError as error:
            raise _ClientError(os_error_text(error)) from None
        sock.settimeout(self.send_timeout)
        return _Stream(sock, (self._host, port))

    def _connect(self, pov_count: int) -> None:
        self._world = self._open(self._world_port)
        self._agents = self._open(self._agent_port)
        for i in range(pov_count):
            pov_port = (self._pov_start_port + i) & 0xFFFF
            agent_port = (self._pov_agent_start_port + i) & 0xFFFF
            opened = []
            for port in (pov_port, agent_port):  # voxelsim tries both, then checks both
                try:
                    opened.append(self._open(port))
                except _ClientError:
                    opened.append(None)
            if None in opened:
                for stream in opened:
                    if stream is not None:
                        stream.close()
                raise _ClientError(f"Could not connect pov/agent stream for agent {i}")
            self._povs.append((opened[0], opened[1]))

    def close(self) -> None:
        """Close every stream; later sends fail with "Not connected to … port"."""
        for stream in [self._world, self._agents, *(s for pair in self._povs for s in pair)]:
            if stream is not None:
                stream.close()
        self._world = self._agents = None
        self._povs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):  # voxelsim closes its streams on drop
        if getattr(self, "_povs", None) is not None:
            self.close()

    # --- sending (payloads already encoded) ---------------------------------------------
    @staticmethod
    def _send(stream: _Stream | None, payload: bytes, missing: str) -> None:
        if stream is None:
            raise _ClientError(missing)
        try:
            stream.send_frame(payload)
        except OSError as error:
            raise _ClientError(os_error_text(error)) from None

    def _send_world_payload(self, payload: bytes) -> None:
        self._send(self._world, payload, "Not connected to world port")

    def _send_agents_payload(self, payload: bytes) -> None:
        self._send(self._agents, payload, "Not connected to agent port")
        for _, agents in list(self._povs):
            self._send(agents, payload, "Not connected to agent port")

    def _send_pov_payload(self, stream_idx: int, payload: bytes) -> None:
        povs = self._povs
        stream = povs[stream_idx][0] if 0 <= stream_idx < len(povs) else None
        self._send(stream, payload, "Not connected to pov port")

    # --- Python API ----------------------------------------------------------------------
    def send_world_py(self, world):
        world = to_instance(world, _voxel_grid_class(), "world")
        payload = wire.encode_world(wire.world_data(world))
        try:
            self._send_world_payload(payload)
        except _ClientError as error:
            raise Exception(f"Failed to send world: {error}") from None

    def send_agents_py(self, agents):
        payload = wire.encode_agents(_agents_snapshot(agents))
        try:
            self._send_agents_payload(payload)
        except _ClientError as error:
            raise Exception(f"Failed to send agents: {error}") from None

    def __repr__(self) -> str:
        return (f"RendererClient(host={self._host!r}, world_port={self._world_port}, "
                f"agent_port={self._agent_port}, pov_streams={len(self._povs)})")


class _Outbox:
    """Bounded per-stream queues of pending sends and the writer thread that drains them.

    Kept apart from AsyncRendererClient so the thread never holds the client: when the client
    is garbage-collected the outbox is told to finish, as voxelsim's threads end once the
    client is dropped.
    """

    def __init__(self, client: RendererClient, queue_size: int):
        self.client = client
        self.queue_size = queue_size
        # Pending work per stream key; each item is (sequence number, zero-argument job).
        self.pending: dict[object, deque] = {}
        # Guards pending/sequence/busy/closed/dropped; wakes the writer and flush() waiters.
        self.cond = threading.Condition()
        self.sequence = 0
        self.busy = False
        self.closed = False
        self.dropped = 0
        # The writer: daemon, so a forgotten client never keeps the process alive.
        self.thread = threading.Thread(target=self.run, name="renderer-async-writer",
                                       daemon=True)
        self.thread.start()

    def submit(self, key, job) -> None:
        with self.cond:
            if self.closed:
                return
            queue = self.pending.setdefault(key, deque(maxlen=self.queue_size))
            if len(queue) == queue.maxlen:
                self.dropped += 1  # deque(maxlen) discards the oldest on append
            self.sequence += 1
            queue.append((self.sequence, job))
            self.cond.notify_all()

    def next_job(self):
        """Oldest pending job over all streams, or None once closed and drained."""
        with self.cond:
            while True:
                heads = [(q[0][0], key) for key, q in self.pending.items() if q]
                if heads:
                    _, key = min(heads)
                    self.busy = True
                    return self.pending[key].popleft()[1]
                self.busy = False
                self.cond.notify_all()
                if self.closed:
                    return None
                self.cond.wait()

    def run(self) -> None:
        while True:
            job = self.next_job()
            if job is None:
                self.client.close()
                return
            try:
                job()
            except Exception:
                pass  # as voxelsim: an async send's failure is dropped

    def flush(self, timeout: float | None) -> bool:
        with self.cond:
            return self.cond.wait_for(
                lambda: not self.busy and not any(self.pending.values()), timeout)

    def finish(self) -> None:
        """Stop accepting sends; the writer drains what is queued, closes the streams, ends."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class AsyncRendererClient(SealedInstances):
    """Non-blocking client: sends return at once; one daemon thread writes the frames.

    Each stream key (world, agents, pov i) has its own queue of at most ``queue_size`` pending
    frames; when full, the oldest is dropped, so a slow renderer loses stale frames rather
    than stalling the simulation or growing memory. Frames leave in the order they were sent.
    What is sent is snapshotted by the caller (a later edit of the world does not leak in);
    encoding happens on the writer thread.
    """

    queue_size = 4

    def __init__(self, host, world_port, agent_port, pov_start_port, pov_agent_start_port,
                 pov_count):
        self._outbox = _Outbox(RendererClient(host, world_port, agent_port, pov_start_port,
                                              pov_agent_start_port, pov_count), self.queue_size)

    @staticmethod
    def default_localhost_py(pov_count):
        self = object.__new__(AsyncRendererClient)
        self._outbox = _Outbox(RendererClient.default_localhost_py(pov_count), self.queue_size)
        return self

    @property
    def _client(self) -> RendererClient:
        return self._outbox.client

    @property
    def dropped(self) -> int:
        """Frames discarded so far because their stream's queue was full."""
        return self._outbox.dropped

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued frame is written; False if ``timeout`` passed first."""
        return self._outbox.flush(timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Write what is queued (up to ``timeout``), stop the writer, close the streams."""
        self._outbox.finish()
        self._outbox.thread.join(timeout)
        self._outbox.client.close()

    def __del__(self):
        outbox = getattr(self, "_outbox", None)
        if outbox is not None:
            outbox.finish()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _submit(self, key, job) -> None:
        self._outbox.submit(key, job)

    # --- Python API ----------------------------------------------------------------------
    def send_world_py(self, world):
        world = to_instance(world, _voxel_grid_class(), "world")
        snapshot = wire.world_data(world)  # the grid's arrays are immutable snapshots
        client = self._client
        self._submit("world", lambda: client._send_world_payload(wire.encode_world(snapshot)))

    def send_agents_py(self, agents):
        snapshot = _agents_snapshot(agents)
        client = self._client
        self._submit("agents", lambda: client._send_agents_payload(wire.encode_agents(snapshot)))

    def _send_pov_later(self, stream_idx: int, make_payload) -> None:
        client = self._client
        self._submit(("pov", stream_idx),
                     lambda: client._send_pov_payload(stream_idx, make_payload()))

    def __repr__(self) -> str:
        return f"AsyncRendererClient({self._client!r})"


# --- argument conversion shared by both clients -------------------------------------------

def _voxel_grid_class():
    from bgen.sim.embedded.world import VoxelGrid
    return VoxelGrid


def _agents_snapshot(agents) -> dict:
    """Extract ``HashMap<usize, Agent>`` as PyO3 does and snapshot each agent's wire form."""
    from bgen.sim.embedded.agent import Agent

    agents = to_dict(agents, "agents")
    snapshot = {}
    for key, agent in agents.items():
        key = to_int(key, "agents", "usize")
        snapshot[key] = wire.agent_data(to_instance(agent, Agent, "agents"))
    return snapshot
