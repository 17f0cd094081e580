"""What the VM does with free memory, for the benchmarks' machine lines (standard library only).

On this project's VM the time of writing outputs depended on it most: free memory beyond about 1 GB
goes back to the host, and new page cache (the outputs) then costs 2.5-3.5 ms per MB.
"""

from __future__ import annotations

import os
from pathlib import Path


def host_reclaims_free_memory(devices: str = "/sys/bus/virtio/devices") -> bool:
    """A VM whose host takes free memory back: a virtio balloon (device 5) with free page reporting
    (feature bit 5; sysfs lists the bits from bit 0). Its free pages cost a fault into the host when
    next used."""
    try:
        for dev in os.scandir(devices):
            with open(os.path.join(dev.path, "device")) as f:
                if int(f.read().strip(), 16) != 5:
                    continue
            with open(os.path.join(dev.path, "features")) as f:
                bits = f.read().strip()
            if len(bits) > 5 and bits[5] == "1":
                return True
    except (OSError, ValueError):
        pass
    return False


def page_reporting() -> str:
    """``host takes free memory back: yes; page_reporting max_waiting_mib=..., ...`` (the kernel's
    parameters where it has them)."""
    text = f"host takes free memory back: {'yes' if host_reclaims_free_memory() else 'no'}"
    params = Path("/sys/module/page_reporting/parameters")
    if params.is_dir():
        text += "; page_reporting " + ", ".join(f"{p.name}={p.read_text().strip()}" for p in sorted(params.iterdir())
                                               if p.name in ("page_reporting_order", "max_waiting_mib", "min_free_ms"))
    return text
