"""bgen server (placeholder until the server lands): prints its usage."""

import sys


def main(argv=None):
    print("usage: python bgen_server.py [--host 127.0.0.1] [--port 8088] [--ws-port 8089]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
