"""`python -m bench` (`make bench`): every benchmark, against the PostgreSQL in DATABASE_URL."""

import sys

from bench.run import main

# The guard matters: client processes are spawned, and spawning imports this module again.
if __name__ == "__main__":
    sys.exit(main())
