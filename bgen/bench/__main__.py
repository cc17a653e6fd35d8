"""``python -m bgen.bench <name>``: see ``bgen.bench``."""

import sys

from bgen.bench import main

sys.exit(main())
