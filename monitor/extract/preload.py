"""What the pool's forkserver loads before it forks a worker (`WorkerPool(preload=...)`).

Importing this module imports feed parsing and extraction and loads py3langid's
model. Loaded once in the forkserver, they are in every worker from its first
instant, shared copy-on-write: the model alone is 64 MB of arrays that no
worker writes (76 MB a worker when each loaded its own), so two workers hold
one copy of it instead of two.
"""

from __future__ import annotations

from monitor.extract.stage import prepare_worker

prepare_worker()
