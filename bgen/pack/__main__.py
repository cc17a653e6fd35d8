"""``python -m bgen.pack``: see ``bgen.pack``."""

import sys

from bgen.pack import main

if __name__ == "__main__":
    sys.exit(main())
