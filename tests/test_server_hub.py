"""Specification of the EventHub and per-connection Subscriber queues (bgen_server).

Publishers are other threads; the hub hands messages to the asyncio thread and every
subscriber has a bounded queue where old steps (and frames) go first.
"""

import asyncio
import base64
import json
import threading
import unittest

from bgen_server import EventHub, Subscriber
from tests.test_server_support import TIMEOUT


def step(event_id):
    return {"type": "step", "id": event_id, "step": {"t": event_id * 0.01}}


class SlowSocket:
    """Stands in for a websocket whose client reads slowly."""

    def __init__(self, delay_s=0.0):
        self.delay_s = delay_s
        self.sent = []
        self.closed = None
        self.resume = asyncio.Event()
        self.resume.set()

    async def send(self, message):
        await self.resume.wait()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.sent.append(message)

    async def close(self, code, reason):
        self.closed = (code, reason)


class TestSubscriberQueue(unittest.IsolatedAsyncioTestCase):
    async def test_a_full_queue_drops_the_oldest_step_first(self):
        subscriber = Subscriber(max_items=3)
        subscriber.offer(1, "step1", True)
        subscriber.offer(2, "summary2", False)
        subscriber.offer(3, "step3", True)
        subscriber.offer(4, "step4", True)
        self.assertEqual([item[1] for item in subscriber.items], ["summary2", "step3", "step4"])
        self.assertEqual(subscriber.dropped, 1)

    async def test_a_queue_full_of_events_that_may_not_be_dropped_is_marked_for_closing(self):
        subscriber = Subscriber(max_items=2)
        for event_id in (1, 2, 3):
            subscriber.offer(event_id, f"event{event_id}", False)
        self.assertEqual(subscriber.overflow,
                         "subscriber too slow: 3 undelivered events; reconnect with ?since=<last id>")
        socket = SlowSocket()
        await asyncio.wait_for(subscriber.pump(socket), TIMEOUT)
        self.assertEqual(socket.closed[0], 1013)
        self.assertTrue(socket.closed[1].startswith("subscriber too slow"))

    async def test_events_already_replayed_are_not_sent_again(self):
        subscriber = Subscriber()
        for event_id in (4, 5, 6):
            subscriber.offer(event_id, f"e{event_id}", False)
        subscriber.skip_through(5)
        subscriber.offer(5, "e5 again", False)
        subscriber.offer(7, "e7", False)
        self.assertEqual([item[1] for item in subscriber.items], ["e6", "e7"])


class TestHubHandOver(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.hub = EventHub()
        self.hub.attach(asyncio.get_running_loop())

    async def drained(self, subscriber, socket, count):
        pump = asyncio.create_task(subscriber.pump(socket))
        try:
            while len(socket.sent) < count:
                await asyncio.sleep(0.01)
        finally:
            pump.cancel()

    async def test_events_published_from_another_thread_arrive_in_order_serialized_once(self):
        subscribers = [Subscriber() for _ in range(3)]
        for subscriber in subscribers:
            self.hub.subscribe("progress:r1", subscriber)
        events = [{"type": "iteration", "id": i, "iteration": i} for i in range(1, 51)]
        publisher = threading.Thread(target=lambda: [self.hub.publish_event("r1", e) for e in events])
        publisher.start()
        await asyncio.to_thread(publisher.join, TIMEOUT)
        sockets = [SlowSocket() for _ in subscribers]
        await asyncio.wait_for(asyncio.gather(*(self.drained(s, k, 50) for s, k in zip(subscribers, sockets))),
                               TIMEOUT)
        self.assertEqual([json.loads(m)["id"] for m in sockets[0].sent], list(range(1, 51)))
        self.assertIs(sockets[0].sent[7], sockets[2].sent[7])     # one string shared by all

    async def test_a_slow_subscriber_loses_old_steps_never_summaries_and_stays_bounded(self):
        slow, fast = Subscriber(max_items=64), Subscriber(max_items=10_000)
        self.hub.subscribe("progress:r1", slow)
        self.hub.subscribe("progress:r1", fast)
        slow_socket, fast_socket = SlowSocket(delay_s=0.001), SlowSocket()
        slow_socket.resume.clear()       # the slow client reads nothing until publishing ends
        pumps = [asyncio.create_task(slow.pump(slow_socket)), asyncio.create_task(fast.pump(fast_socket))]
        longest = 0

        def publish():
            for event_id in range(1, 5001):
                if event_id % 1000 == 0:
                    self.hub.publish_event("r1", {"type": "episode_summary", "id": event_id})
                else:
                    self.hub.publish_event("r1", step(event_id))

        publisher = threading.Thread(target=publish)
        publisher.start()
        while publisher.is_alive():
            longest = max(longest, len(slow.items))
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)
        longest = max(longest, len(slow.items))
        slow_socket.resume.set()

        def last_id(socket):
            return json.loads(socket.sent[-1])["id"] if socket.sent else None

        async def delivered():
            while last_id(slow_socket) != 5000 or last_id(fast_socket) != 5000:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(delivered(), TIMEOUT)
        for pump in pumps:
            pump.cancel()
        self.assertLessEqual(longest, 65)
        self.assertEqual(len(fast_socket.sent), 5000)
        ids = [json.loads(m)["id"] for m in slow_socket.sent]
        self.assertEqual(ids, sorted(ids))
        self.assertTrue({1000, 2000, 3000, 4000, 5000} <= set(ids))
        self.assertIn(4999, ids)                 # the newest steps are the ones kept
        self.assertLess(len(ids), 5000)
        self.assertGreater(slow.dropped, 0)

    async def test_with_no_subscriber_nothing_is_serialized(self):
        self.hub.publish_event("nobody", {"type": "step", "id": 1, "value": object()})

    async def test_frames_go_out_base64_in_json_or_as_one_binary_message(self):
        as_json, as_binary = Subscriber("base64"), Subscriber("binary")
        self.hub.subscribe("render:r1:world", as_json)
        self.hub.subscribe("render:r1:world", as_binary)
        await asyncio.to_thread(self.hub.publish_frame, "r1", "world", b"\x01\x02voxels")
        json_socket, binary_socket = SlowSocket(), SlowSocket()
        await asyncio.wait_for(asyncio.gather(self.drained(as_json, json_socket, 1),
                                              self.drained(as_binary, binary_socket, 1)), TIMEOUT)
        frame = json.loads(json_socket.sent[0])
        self.assertEqual({k: frame[k] for k in ("type", "channel", "len")},
                         {"type": "frame", "channel": "world", "len": 8})
        self.assertEqual(base64.b64decode(frame["payload_b64"]), b"\x01\x02voxels")
        self.assertIsInstance(frame["ts"], float)
        self.assertEqual(binary_socket.sent[0], b"\x08\x00\x00\x00\x01\x02voxels")

    async def test_unsubscribing_the_last_subscriber_forgets_the_topic(self):
        subscriber = Subscriber()
        self.hub.subscribe("progress:r1", subscriber)
        self.hub.unsubscribe("progress:r1", subscriber)
        self.assertEqual(self.hub.subscriber_count("progress:r1"), 0)
        self.hub.publish_event("r1", {"type": "step", "id": 1, "value": object()})

    async def test_the_hand_over_drops_steps_beyond_its_limit_but_keeps_other_events(self):
        hub = EventHub(handoff_limit=10)
        hub.attach(asyncio.get_running_loop())
        subscriber = Subscriber(max_items=1000)
        hub.subscribe("progress:r1", subscriber)

        def publish():
            for event_id in range(1, 31):
                hub.publish_event("r1", step(event_id))
            hub.publish_event("r1", {"type": "critique", "id": 31})

        publish()      # on this thread, without yielding: no flush can run in between
        await asyncio.sleep(0.05)
        ids = [item[0] for item in subscriber.items]
        self.assertEqual(ids, list(range(1, 11)) + [31])
        self.assertEqual(hub.dropped, 20)


if __name__ == "__main__":
    unittest.main()
