"""Memory and disk resource alarms, as RabbitMQ's vm_memory_monitor, rabbit_disk_monitor and
rabbit_alarm: while one is in effect, publishing connections are blocked (connection.blocked,
their sockets no longer read; see amqp_broker/session/throttle.py) and consumers go on.

Two parts:

- `ResourceAlarms`: the sans-IO state machine. Given a reading of the memory in use and the
  free disk space it says which alarms are in effect and which were just set or cleared.
- `AlarmMonitor`: the broker's side. It samples the process's resident memory
  (/proc/self/statm, RabbitMQ's "rss" strategy) and the data directory's free space once a
  second, logs a warning when an alarm is set or cleared (as rabbit_alarm does), and tells
  its subscriber (the broker, which tells every connection) the new set. The watermark and
  the disk limit can be changed while the broker runs (rabbitmqctl
  set_vm_memory_high_watermark / set_disk_free_limit); the change is evaluated at once.

Sizes are written as RabbitMQ's configuration writes them (rabbit_resource_monitor_misc):
a plain number of bytes, or a number with a unit, k/kiB/M/MiB/G/GiB (powers of 1024) or
kB/MB/GB (powers of 1000).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger("amqp_broker.alarms")

MEMORY, DISK = "memory", "disk"  # rabbit_alarm's resource_alarm_source()
DEFAULT_MEMORY_HIGH_WATERMARK = 0.4  # RabbitMQ's vm_memory_high_watermark.relative
DEFAULT_DISK_FREE_LIMIT = 50_000_000  # RabbitMQ's disk_free_limit.absolute (50MB)
SAMPLE_INTERVAL = 1.0  # seconds between readings

_UNITS = {
    "": 1, "k": 1024, "kib": 1024, "m": 1024 ** 2, "mib": 1024 ** 2, "g": 1024 ** 3, "gib": 1024 ** 3,
    "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3, "tb": 1000 ** 4,
}
_SIZE = re.compile(r"\s*([0-9]+)\s*([A-Za-z]*)\s*")


class SizeError(ValueError):
    """A size or watermark that does not parse."""


def parse_size(text: str | int) -> int:
    """Bytes of a size such as 50000000, "200MB" or "1GiB"."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise SizeError(f"invalid size {text!r}")
        return text
    match = _SIZE.fullmatch(str(text))
    if match is None or match.group(2).lower() not in _UNITS:
        raise SizeError(f"invalid size {text!r}: a number of bytes, optionally with a unit "
                        "(kB, MB, GB, kiB, MiB, GiB)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


@dataclass(frozen=True)
class Watermark:
    """The memory high watermark: a fraction of the machine's RAM, or an absolute size."""

    relative: float | None = None
    absolute: int | None = None

    @classmethod
    def parse(cls, value: str | float) -> "Watermark":
        """0.4 or "0.4" (a fraction of RAM), or "200MB" / "209715200" (an absolute size: a
        unit, or a whole number of bytes above 1)."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls.fraction(float(value))
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            return cls(absolute=parse_size(text))
        if number > 1 and text.isdigit():
            return cls(absolute=int(text))
        return cls.fraction(number)

    @classmethod
    def fraction(cls, value: float) -> "Watermark":
        if not 0.0 <= value <= 1.0 or value != value:  # RabbitMQ refuses values outside [0, 1]
            raise SizeError(f"invalid memory high watermark {value!r}: a fraction between 0 and 1")
        return cls(relative=value)

    def limit(self, total_memory: int) -> int:
        """The memory limit in bytes on a machine with `total_memory` bytes of RAM."""
        if self.absolute is not None:
            return self.absolute
        return int(total_memory * self.relative)

    def describe(self) -> str:
        return f"{self.absolute} bytes" if self.absolute is not None else f"{self.relative} of RAM"


class ResourceAlarms:
    """Which resource alarms are in effect, from readings against the limits (sans-IO)."""

    def __init__(self, memory_limit: int, disk_free_limit: int):
        self.memory_limit = memory_limit
        self.disk_free_limit = disk_free_limit
        self.active: frozenset[str] = frozenset()

    def update(self, memory_used: int | None, disk_free: int | None) -> tuple[frozenset, frozenset]:
        """A new reading (None: not measurable here, that alarm keeps its state) ->
        (alarms just set, alarms just cleared)."""
        active = set(self.active)
        if memory_used is not None:
            # vm_memory_monitor: the alarm is on while the memory used exceeds the limit
            _switch(active, MEMORY, memory_used > self.memory_limit)
        if disk_free is not None:
            # rabbit_disk_monitor: the alarm is on while the free space is below the limit
            _switch(active, DISK, disk_free < self.disk_free_limit)
        new = frozenset(active)
        raised, cleared = new - self.active, self.active - new
        self.active = new
        return raised, cleared


def _switch(active: set, resource: str, on: bool) -> None:
    if on:
        active.add(resource)
    else:
        active.discard(resource)


def total_memory() -> int:
    """Bytes of RAM of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def resident_memory() -> int | None:
    """Bytes of RAM this process uses now (RabbitMQ's "rss" strategy); None where the OS
    does not say (no /proc)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def disk_free(path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


class AlarmMonitor:
    """The broker's resource alarms: sampled once a second while the broker runs."""

    def __init__(self, memory_high_watermark: Watermark, disk_free_limit: int, data_dir=None,
                 on_change: Callable[[frozenset], None] | None = None):
        self.watermark = memory_high_watermark
        self.data_dir = data_dir  # None (an in-memory broker): no disk to watch
        self.total_memory = total_memory()
        self.state = ResourceAlarms(memory_high_watermark.limit(self.total_memory), disk_free_limit)
        self.on_change = on_change  # called with the alarms in effect after each change
        self._loop = None
        self._timer = None

    # -- reading ---------------------------------------------------------------------------

    @property
    def active(self) -> frozenset[str]:
        """The resources in alarm now (MEMORY, DISK)."""
        return self.state.active

    @property
    def memory_limit(self) -> int:
        return self.state.memory_limit

    @property
    def disk_free_limit(self) -> int:
        return self.state.disk_free_limit

    # -- changing the limits at run time -----------------------------------------------------

    def set_memory_high_watermark(self, value: str | float) -> None:
        """A fraction of RAM (0.4), or an absolute size ("200MB"); 0 blocks all publishing,
        as in RabbitMQ. Raises SizeError for a value that does not parse."""
        self.watermark = Watermark.parse(value)
        self.state.memory_limit = self.watermark.limit(self.total_memory)
        log.info("memory high watermark set to %s (%d bytes)", self.watermark.describe(), self.state.memory_limit)
        self.sample()

    def set_disk_free_limit(self, value: str | int) -> None:
        self.state.disk_free_limit = parse_size(value)
        log.info("disk free limit set to %d bytes", self.state.disk_free_limit)
        self.sample()

    # -- sampling ------------------------------------------------------------------------------

    def start(self, loop) -> None:
        self._loop = loop
        self.sample()
        self._timer = loop.call_later(SAMPLE_INTERVAL, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self._timer = self._loop.call_later(SAMPLE_INTERVAL, self._tick)
        self.sample()

    def sample(self) -> None:
        """Read memory and disk now and act on any change."""
        free = disk_free(self.data_dir) if self.data_dir is not None else None
        raised, cleared = self.state.update(resident_memory(), free)
        for resource in sorted(raised):
            log.warning("%s resource limit alarm set. Publishers will be blocked until this alarm clears",
                        resource)
        for resource in sorted(cleared):
            log.warning("%s resource limit alarm cleared", resource)
        if (raised or cleared) and self.on_change is not None:
            self.on_change(self.state.active)


def blocked_reason(active: frozenset[str]) -> str:
    """connection.blocked's reason (rabbit_reader:blocked_by_message/1): "low on memory",
    "low on disk", "low on memory & disk"."""
    return "low on " + " & ".join(r for r in (MEMORY, DISK) if r in active)
