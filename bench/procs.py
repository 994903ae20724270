"""The process tree as /proc shows it: the benches' one reader of `/proc/<pid>/stat`.

Benches measure a service with its pool workers and helpers (chromium, pdf
workers), so they need a process's descendants and their CPU times.
"""

from __future__ import annotations

from pathlib import Path


def stat_fields(pid: int | str) -> list[str]:
    """The fields of `/proc/<pid>/stat` after `(comm)`: [0] is the state, [1] the ppid,
    [11] and [12] utime and stime in clock ticks. The comm may hold spaces and
    parentheses, so the split is after the last ')'. Raises OSError when it is gone."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def all_stat_fields() -> dict[int, list[str]]:
    """`stat_fields` of every process alive now, by pid (those that exit meanwhile left out)."""
    found: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            found[int(entry.name)] = stat_fields(entry.name)
        except OSError:
            continue
    return found


def children(pid: int, stats: dict[int, list[str]] | None = None) -> list[int]:
    """The processes whose parent is `pid`."""
    stats = all_stat_fields() if stats is None else stats
    return [child for child, fields in stats.items() if int(fields[1]) == pid]


def descendants(pid: int, stats: dict[int, list[str]] | None = None) -> list[int]:
    """Every process below `pid` (children, their children, ...), alive now."""
    stats = all_stat_fields() if stats is None else stats
    by_parent: dict[int, list[int]] = {}
    for child, fields in stats.items():
        by_parent.setdefault(int(fields[1]), []).append(child)
    found, queue = [], list(by_parent.get(pid, []))
    while queue:
        child = queue.pop()
        found.append(child)
        queue.extend(by_parent.get(child, []))
    return found
