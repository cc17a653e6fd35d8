"""Specification of the renderer frame parser (bgen.server.framing): bytes in, frames out."""

import struct
import unittest

from bgen.server.framing import FrameError, FrameParser, encode_frame


class TestFrameParserSplitsAStream(unittest.TestCase):
    def test_one_frame_in_one_chunk_comes_out_whole(self):
        self.assertEqual(FrameParser().feed(b"\x03\x00\x00\x00abc"), [b"abc"])

    def test_length_is_little_endian_u32(self):
        payload = bytes(range(256)) * 2
        self.assertEqual(encode_frame(payload)[:4], struct.pack("<I", 512))
        self.assertEqual(FrameParser().feed(encode_frame(payload)), [payload])

    def test_frames_split_at_every_byte_boundary_come_out_in_order(self):
        stream = encode_frame(b"world") + encode_frame(b"a") + encode_frame(b"agents" * 100)
        parser = FrameParser()
        frames = []
        for i in range(len(stream)):
            frames.extend(parser.feed(stream[i:i + 1]))
        self.assertEqual(frames, [b"world", b"a", b"agents" * 100])
        self.assertEqual(parser.buffered, 0)

    def test_many_frames_in_one_chunk_all_come_out(self):
        stream = b"".join(encode_frame(bytes([i]) * (i + 1)) for i in range(50))
        self.assertEqual(FrameParser().feed(stream), [bytes([i]) * (i + 1) for i in range(50)])

    def test_a_partial_frame_waits_for_the_rest(self):
        parser = FrameParser()
        self.assertEqual(parser.feed(encode_frame(b"abcdef")[:7]), [])
        self.assertEqual(parser.buffered, 7)
        self.assertEqual(parser.feed(b"def"), [b"abcdef"])

    def test_a_frame_of_exactly_the_limit_is_accepted(self):
        self.assertEqual(FrameParser(max_frame_bytes=4).feed(encode_frame(b"abcd")), [b"abcd"])

    def test_a_clean_end_of_stream_is_not_an_error(self):
        parser = FrameParser()
        parser.feed(encode_frame(b"x"))
        parser.eof()


class TestFrameParserRejectsBrokenStreams(unittest.TestCase):
    def test_a_frame_over_the_limit_is_rejected_before_its_payload_arrives(self):
        parser = FrameParser(max_frame_bytes=1000)
        with self.assertRaises(FrameError) as caught:
            parser.feed(struct.pack("<I", 1001))
        self.assertEqual(str(caught.exception), "frame of 1001 bytes exceeds limit of 1000")

    def test_an_empty_frame_is_rejected(self):
        with self.assertRaises(FrameError) as caught:
            FrameParser().feed(b"\x00\x00\x00\x00")
        self.assertEqual(str(caught.exception), "empty frame (length 0)")

    def test_a_stream_ending_inside_a_payload_says_how_much_came(self):
        parser = FrameParser()
        parser.feed(encode_frame(b"0123456789")[:9])
        with self.assertRaises(FrameError) as caught:
            parser.eof()
        self.assertEqual(str(caught.exception), "stream ended inside a frame: got 5 of 10 payload bytes")

    def test_a_stream_ending_inside_a_header_says_so(self):
        parser = FrameParser()
        parser.feed(b"\x05\x00")
        with self.assertRaises(FrameError) as caught:
            parser.eof()
        self.assertEqual(str(caught.exception), "stream ended inside a frame header: got 2 of 4 bytes")

    def test_after_an_error_the_parser_keeps_failing(self):
        parser = FrameParser(max_frame_bytes=10)
        with self.assertRaises(FrameError):
            parser.feed(struct.pack("<I", 11))
        with self.assertRaises(FrameError):
            parser.feed(encode_frame(b"ok"))

    def test_frames_before_a_bad_header_in_the_same_chunk_are_lost_with_the_connection(self):
        parser = FrameParser(max_frame_bytes=10)
        with self.assertRaises(FrameError):
            parser.feed(encode_frame(b"ok") + struct.pack("<I", 99))


if __name__ == "__main__":
    unittest.main()
