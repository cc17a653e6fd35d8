"""Specification of finding the policy module in a reply (bgen/llm/extract.py): text in, code out."""

import unittest

from bgen.llm.extract import extract, fenced_blocks, strip_reasoning

ACT = "def act(t, agent, world, fw, env, helpers):\n    return None\n"
MODULE = ACT + "def collect(step_ctx):\n    return {}\ndef finalize(ep_ctx):\n    return {}\n"


class TestReasoningSections(unittest.TestCase):
    def test_sections_and_lone_tags_are_removed(self):
        table = [
            ("<think>a</think>b", "b"),
            ("<THINK>a</THINK>b", "b"),
            ("<thinking>\na\n</thinking>\nb", "\nb"),
            ("<reasoning>a</reasoning>b<think>c</think>d", "bd"),
            ("draft</think>final", "final"),                 # the opening tag was in the chat template
            ("answer<think>cut off inside the reasoning", "answer"),
            ("no tags at all", "no tags at all"),
            ("<thinker>kept</thinker>", "<thinker>kept</thinker>"),
        ]
        for text, expected in table:
            with self.subTest(text=text):
                self.assertEqual(strip_reasoning(text), expected)


class TestFencedBlocks(unittest.TestCase):
    def test_fences_tags_indentation_and_ends(self):
        table = [
            ("```python\na\n```", [("a", "python", True)]),
            ("```Python title='p.py'\na\n```", [("a", "python", True)]),
            ("~~~py\na\n~~~", [("a", "py", True)]),
            ("````\na\n```\nb\n````", [("a\n```\nb", "", True)]),        # a shorter fence is content
            ("```\na\n~~~\n```", [("a\n~~~", "", True)]),                # another character is content
            ("  ```python\n  a\n    b\n  ```", [("a\n  b", "python", True)]),
            ("```python\n  a\n  ```\nb\n```", [("  a\n  ```\nb", "python", True)]),   # deeper closer is content
            ("```python\na", [("a", "python", False)]),                  # cut off
            ("```json\n{}\n```\n```\nx\n```", [("{}", "json", True), ("x", "", True)]),
            ("text ``` inline ``` text", []),
        ]
        for text, expected in table:
            with self.subTest(text=text):
                self.assertEqual([(b.code, b.tag, b.closed) for b in fenced_blocks(text)], expected)


class TestChoosingTheModule(unittest.TestCase):
    def test_the_block_taken_and_why(self):
        broken = "def act(:\n"
        table = [
            ("```python\n" + MODULE + "```", MODULE, 1, 1, "the only block"),
            ("```python\n" + MODULE + "```\n```python\n" + ACT + "```", MODULE, 1, 2,
             "the last block that compiles and defines act, collect and finalize"),
            ("```python\n" + ACT + "```\n```python\nx = 1\n```", ACT, 1, 2,
             "the last block that compiles and defines act"),
            ("```python\nx = 1\n```\n```python\n" + broken + "```", broken, 2, 2,
             "the longest block; none compiles and defines act"),
            ("```bash\nls\n```\n" + MODULE, MODULE, None, 0, "no fenced block; the text that compiles"),
            ("Here it is:\n" + MODULE + "\nEnjoy.", MODULE, None, 0, "no fenced block; the text that compiles"),
        ]
        for text, code, block, blocks, reason in table:
            with self.subTest(text=text[:40]):
                result = extract(text)
                self.assertEqual((result.code, result.block, result.blocks, result.reason),
                                 (code, block, blocks, reason))

    def test_a_module_only_inside_the_reasoning_section_is_still_found(self):
        result = extract("<think>\n```python\n" + MODULE + "```\n</think>\nThat is my answer.")
        self.assertEqual((result.code, result.from_reasoning, result.reasoning_stripped), (MODULE, True, True))

    def test_text_that_never_compiles_is_returned_whole_for_the_load_check_to_explain(self):
        result = extract("I cannot write this policy.")
        self.assertEqual((result.code, result.usable, result.source), ("I cannot write this policy.\n", False, "text"))

    def test_the_note_for_the_llm_names_the_block_only_when_there_was_a_choice(self):
        two = extract("```python\nx = 1\n```\n```python\n" + MODULE + "```")
        self.assertEqual(two.note(), "Your reply had 2 Python code blocks; block 2 of 2 was taken as the "
                                     "module (the last block that compiles and defines act, collect and "
                                     "finalize). Reply with exactly one ```python block holding the complete module.")
        self.assertIsNone(extract("```python\n" + MODULE + "```").note())
        self.assertIsNone(extract(MODULE).note())


if __name__ == "__main__":
    unittest.main()
