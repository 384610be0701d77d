"""`python -m analytics`: the command line of analytics.cli."""

import sys

from analytics.cli import main

if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
