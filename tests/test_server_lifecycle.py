"""Specification of the run lifecycle table (bgen.server.lifecycle)."""

import unittest

from bgen.errors import Conflict
from bgen.server import lifecycle
from bgen.server.lifecycle import LifecycleError, next_state


class TestLegalTransitions(unittest.TestCase):
    def test_each_row_of_the_table(self):
        table = [
            ("queued", "start", "running"),
            ("queued", "terminate", "terminated"),
            ("queued", "interrupt", "interrupted"),
            ("running", "complete", "done"),
            ("running", "fail", "failed"),
            ("running", "terminate", "stopping"),
            ("running", "interrupt", "interrupted"),
            ("stopping", "terminate", "stopping"),
            ("stopping", "complete", "terminated"),
            ("stopping", "fail", "terminated"),
            ("stopping", "interrupt", "interrupted"),
        ]
        for state, event, expected in table:
            with self.subTest(state=state, event=event):
                self.assertEqual(next_state(state, event), expected)

    def test_final_states_have_no_way_out(self):
        self.assertEqual(set(lifecycle.FINAL_STATES), {"done", "failed", "terminated", "interrupted"})
        for state in lifecycle.FINAL_STATES:
            for event in lifecycle.EVENTS:
                with self.subTest(state=state, event=event):
                    with self.assertRaises(LifecycleError):
                        next_state(state, event)

    def test_every_final_state_has_a_closing_progress_message(self):
        self.assertEqual(lifecycle.FINAL_MESSAGE, {"done": "done", "failed": "error",
                                                   "terminated": "terminated", "interrupted": "error"})


class TestIllegalTransitions(unittest.TestCase):
    def test_the_error_names_the_event_and_the_state(self):
        with self.assertRaises(LifecycleError) as caught:
            next_state("done", "terminate")
        self.assertEqual(str(caught.exception), "cannot terminate a run that is done")
        self.assertEqual((caught.exception.event, caught.exception.state), ("terminate", "done"))

    def test_it_is_a_conflict_answered_with_409(self):
        self.assertTrue(issubclass(LifecycleError, Conflict))
        self.assertEqual(LifecycleError("start", "done").status, 409)

    def test_a_queued_run_cannot_complete_without_starting(self):
        with self.assertRaisesRegex(LifecycleError, "^cannot complete a run that is queued$"):
            next_state("queued", "complete")

    def test_unknown_states_and_events_are_programming_errors(self):
        with self.assertRaisesRegex(ValueError, r"^run state: expects one of queued, .*actual: 'paused'$"):
            next_state("paused", "start")
        with self.assertRaisesRegex(ValueError, r"^run event: expects one of start, .*actual: 'pause'$"):
            next_state("running", "pause")


if __name__ == "__main__":
    unittest.main()
