"""``python -m rpilinkd`` runs the daemon (same as the ``rpilinkd`` command)."""

import sys

from rpilinkd.service.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
