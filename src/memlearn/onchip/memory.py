"""Memory budgets of large runs: parse a size, the default budget, the process's peak.

A budget bounds the process's peak resident memory (bytes).  ``parse_memory("4G")`` reads a
size; :func:`default_budget` is :data:`DEFAULT_FRACTION` of the machine's physical memory (read
with ``os.sysconf`` where the system has it, else :data:`FALLBACK_BUDGET`); :func:`peak_rss`
is the process's peak resident set size so far (``None`` where the system does not report
it).  :func:`return_freed_memory` makes the C allocator give freed memory back to the system
(glibc only), so that rounds of large temporaries do not leave the process ever larger.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import re
import sys

DEFAULT_FRACTION = 0.5  # [E] of the physical memory: leaves room for the system and other jobs
FALLBACK_BUDGET = 4 * 1024**3  # [E] bytes, where the physical memory cannot be read
MIN_BUDGET = 64 * 1024**2  # [E] bytes: below this not even the interpreter and torch fit
# [E] bytes: glibc serves allocations from this size up with their own mapping, unmapped when
# freed; its default threshold grows with the blocks freed (up to 32 MiB), after which freed
# tensors stay in a fragmented heap (a round of 1,000 chips then grew by about 1 GiB).
MMAP_THRESHOLD = 1024**2
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


def parse_memory(value: int | float | str, name: str = "max_memory") -> int:
    """Bytes of a size: a number of bytes, or a number with a suffix K, M, G or T (powers of
    1024, an optional ``B``/``iB``: ``4G``, ``512MiB``, ``1.5g``); at least :data:`MIN_BUDGET`.
    ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a size in bytes, got {value!r}")
    if isinstance(value, (int, float)):
        size = float(value)
    else:
        match = _SIZE.match(str(value))
        if match is None:
            raise ValueError(
                f"{name} must be bytes, optionally with a suffix K, M, G or T (powers of 1024), "
                f"e.g. 4G or 512M; got {value!r}"
            )
        size = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if not size >= MIN_BUDGET:
        raise ValueError(f"{name} must be at least {MIN_BUDGET // 1024**2}M, got {value!r}")
    return int(size)


def physical_memory() -> int | None:
    """The machine's physical memory (bytes), or ``None`` where ``os.sysconf`` cannot say."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return int(pages) * int(size) if pages > 0 and size > 0 else None


def default_budget() -> int:
    """:data:`DEFAULT_FRACTION` of the physical memory, else :data:`FALLBACK_BUDGET` (bytes)."""
    total = physical_memory()
    return FALLBACK_BUDGET if total is None else max(int(DEFAULT_FRACTION * total), MIN_BUDGET)


def peak_rss() -> int | None:
    """The process's peak resident memory so far (bytes); ``None`` where it is not reported.

    Linux: ``VmHWM`` of ``/proc/self/status`` (``ru_maxrss`` there starts a fresh program at
    the resident size of the process that started it); elsewhere ``resource.getrusage``."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # not on every system (Windows)
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # macOS: bytes; else KiB


def format_bytes(n: int | None) -> str:
    """``n`` bytes in the largest binary unit below it (``"3.1G"``); ``"?"`` for ``None``."""
    if n is None:
        return "?"
    for unit in ("T", "G", "M", "K"):
        if n >= _UNITS[unit]:
            return f"{n / _UNITS[unit]:.1f}{unit}"
    return f"{n}B"


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018  # glibc's, absent from musl
    except (OSError, AttributeError):
        return None
    return libc


def return_freed_memory() -> bool:
    """Make freed memory go back to the system: large blocks (from :data:`MMAP_THRESHOLD`
    bytes) mapped on their own from now on, and the heap's free pages released now
    (``mallopt``/``malloc_trim``).  Values computed are unaffected.  ``False`` where the C
    library is not glibc (nothing done)."""
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    libc.malloc_trim(0)
    return True
