"""A module that takes 5 s to import: a forkserver still busy preloading (tests/test_pool.py)."""

import time

time.sleep(5)
