"""`python -m app.cli`, which worked while the CLI was one module: the same as `python -m app`."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
