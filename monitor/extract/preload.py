"""What the pool's forkserver loads before it forks a worker (`WorkerPool(preload=...)`).

Importing this module imports feed parsing and extraction (Trafilatura, lxml,
htmldate, feedparser: about a second) and maps py3langid's model
(`monitor.extract.langmodel`). Done once in the forkserver, the workers have
all of it from their first instant, shared copy-on-write, instead of each
importing it before its first task.
"""

from __future__ import annotations

from monitor.extract.stage import prepare_worker

prepare_worker()
