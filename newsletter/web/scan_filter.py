"""Which link hits are people: a hit waits `window` seconds in memory before it counts.

Link scanners (mail security gateways, Safe Links, preview bots) fetch every link of a message,
the invisible canary too; people never see the canary. So a canary hit marks its client (an
IPv4 address or an IPv6 /64) as a scanner: its hits from `window` seconds before the canary
are dropped from the buffer, and its hits up to `window` seconds after it are dropped as they
come. A hit that is `window` seconds old with no canary near it is a person's, and is handed
to the store as a total per link. A client's repeat of one link within the window counts once.
Client addresses live only here, in memory, for at most 2 x window seconds, and at most
MAX_CLIENTS of them; the store gets counts per link id and nothing else.

One process keeps one buffer: with several serve hosts, a scanner's canary and its other hits
are judged together only when the balancer sends one client to one host (by source address).
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

MAX_PENDING = 100_000  # hits held at once; past it the oldest are judged early (see _settle)
MAX_CLIENTS = 100_000  # marked scanners and recent (client, link) pairs kept at once, each


@dataclass(frozen=True)
class Settled:
    """What the filter decided since it was last asked: totals per link id."""

    clicks: dict[str, int]
    filtered: dict[str, int]

    def __bool__(self) -> bool:
        return bool(self.clicks or self.filtered)


class ScannerFilter:
    """Thread-safe; `clock` is seconds (time.monotonic in serve, a counter in tests).

    Every operation costs time in proportion to the hits it decides, never to the number of
    clients seen: marks and repeats are kept in insertion order and expire from the front, and
    each client's waiting hits are indexed, so a canary drops only that client's."""

    def __init__(self, window: float, clock: Callable[[], float]) -> None:
        self.window, self.clock = window, clock
        self._lock = threading.Lock()
        # [when, client, link id, still waiting]: in time order, and per client
        self._pending: deque[list] = deque()
        self._by_client: dict[str, deque[list]] = {}
        self._marked: OrderedDict[str, float] = OrderedDict()  # client -> its last canary
        self._recent: OrderedDict[tuple[str, str], float] = OrderedDict()  # last counted hit
        self._clicks: Counter[str] = Counter()
        self._filtered: Counter[str] = Counter()

    def hit(self, client: str, link_id: str, *, canary: bool = False) -> None:
        """One GET of a counted link (canary=True: of an edition's canary). A client's repeat
        of the same link within the window is one click: reloading cannot inflate a count."""
        now = self.clock()
        with self._lock:
            self._expire(now)
            if canary:
                self._mark(client, now)
                self._filtered[link_id] += 1
                self._drop_pending(client, now - self.window)
            elif client in self._marked or (client, link_id) in self._recent:
                self._filtered[link_id] += 1
            else:
                self._remember(client, link_id, now)
                entry = [now, client, link_id, True]
                self._pending.append(entry)
                self._by_client.setdefault(client, deque()).append(entry)
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
            return sum(entry[3] for entry in self._pending)

    def _mark(self, client: str, now: float) -> None:
        self._marked[client] = now
        self._marked.move_to_end(client)
        while len(self._marked) > MAX_CLIENTS:
            self._marked.popitem(last=False)

    def _remember(self, client: str, link_id: str, now: float) -> None:
        self._recent[(client, link_id)] = now
        while len(self._recent) > MAX_CLIENTS:
            self._recent.popitem(last=False)

    def _expire(self, now: float) -> None:
        # A mark lasts `window` after its canary (hits in it are dropped as they come); hits
        # before the canary were dropped from the buffer when it came.
        while self._marked and now - next(iter(self._marked.values())) > self.window:
            self._marked.popitem(last=False)
        while self._recent and now - next(iter(self._recent.values())) > self.window:
            self._recent.popitem(last=False)

    def _drop_pending(self, client: str, since: float) -> None:
        for entry in self._by_client.pop(client, ()):
            if entry[3] and entry[0] >= since:
                entry[3] = False
                self._filtered[entry[2]] += 1

    def _settle(self, now: float) -> None:
        # Hits are appended in time order, so the settled ones are at the left end. A flood
        # past MAX_PENDING is judged early rather than held without bound.
        while self._pending and (now - self._pending[0][0] > self.window
                                 or len(self._pending) > MAX_PENDING):
            entry = self._pending.popleft()
            mine = self._by_client.get(entry[1])
            if mine and mine[0] is entry:
                mine.popleft()
                if not mine:
                    del self._by_client[entry[1]]
            if entry[3]:
                self._clicks[entry[2]] += 1
