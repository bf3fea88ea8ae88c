"""Which link hits are people: a hit waits `window` seconds in memory before it counts.

Link scanners (mail security gateways, Safe Links, preview bots) fetch every link of a message,
the invisible canary too; people never see the canary. So a canary hit marks its client (an
IPv4 address or an IPv6 /64) as a scanner: its hits from `window` seconds before the canary
are dropped from the buffer, and its hits up to `window` seconds after it are dropped as they
come. A hit that is `window` seconds old with no canary near it is a person's, and is handed
to the store as a total per link. Client addresses live only here, in memory, for at most
2 x window seconds; the store gets counts per link id and nothing else.

One process keeps one buffer: with several serve hosts, a scanner's canary and its other hits
are judged together only when the balancer sends one client to one host (by source address).
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

MAX_PENDING = 100_000  # hits held at once; past it the oldest are judged early (see _settle)


@dataclass(frozen=True)
class Settled:
    """What the filter decided since it was last asked: totals per link id."""

    clicks: dict[str, int]
    filtered: dict[str, int]

    def __bool__(self) -> bool:
        return bool(self.clicks or self.filtered)


class ScannerFilter:
    """Thread-safe; `clock` is seconds (time.monotonic in serve, a counter in tests)."""

    def __init__(self, window: float, clock: Callable[[], float]) -> None:
        self.window, self.clock = window, clock
        self._lock = threading.Lock()
        self._pending: deque[tuple[float, str, str]] = deque()  # (when, client, link id)
        self._marked: dict[str, float] = {}  # client -> when its last canary came
        self._clicks: Counter[str] = Counter()
        self._filtered: Counter[str] = Counter()

    def hit(self, client: str, link_id: str, *, canary: bool = False) -> None:
        """One GET of a counted link (canary=True: of an edition's canary)."""
        now = self.clock()
        with self._lock:
            if canary:
                self._marked[client] = now
                self._filtered[link_id] += 1
                self._drop_pending(client, now - self.window)
            elif now - self._marked.get(client, -1e18) <= self.window:
                self._filtered[link_id] += 1
            else:
                self._pending.append((now, client, link_id))
            self._settle(now)

    def settle(self, *, everything: bool = False) -> Settled:
        """Totals decided so far, and reset them. everything=True (at shutdown): the hits
        still waiting count as people's, since no canary came for them in time."""
        with self._lock:
            self._settle(float("inf") if everything else self.clock())
            out = Settled(dict(self._clicks), dict(self._filtered))
            self._clicks.clear()
            self._filtered.clear()
            return out

    def restore(self, settled: Settled) -> None:
        """Put totals back that could not be written (they go out with the next settle)."""
        with self._lock:
            self._clicks.update(settled.clicks)
            self._filtered.update(settled.filtered)

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def _drop_pending(self, client: str, since: float) -> None:
        kept: deque[tuple[float, str, str]] = deque()
        for entry in self._pending:
            if entry[1] == client and entry[0] >= since:
                self._filtered[entry[2]] += 1
            else:
                kept.append(entry)
        self._pending = kept

    def _settle(self, now: float) -> None:
        # Hits are appended in time order, so the settled ones are at the left end. A flood
        # past MAX_PENDING is judged early rather than held without bound.
        while self._pending and (now - self._pending[0][0] > self.window
                                 or len(self._pending) > MAX_PENDING):
            when, client, link_id = self._pending.popleft()
            near_canary = abs(self._marked.get(client, -1e18) - when) <= self.window
            (self._filtered if near_canary else self._clicks)[link_id] += 1
        for client, when in list(self._marked.items()):
            if now - when > 2 * self.window:
                del self._marked[client]
