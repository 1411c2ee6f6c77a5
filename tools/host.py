"""What this machine has free, for checks that refuse work it cannot finish."""

from __future__ import annotations

import os


def available_memory() -> int | None:
    """Bytes the kernel says a new allocation can get without swapping (MemAvailable); None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
