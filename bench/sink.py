"""A minimal SMTP sink for benchmarks: answers 250 to every command and only looks for the
end-of-data marker, so it can take messages faster than any Python sender can give them.

Run: python bench/sink.py PORT [STAMPS_FILE] [--no-pipelining]  (prints "ready"; on SIGTERM
prints the count, writes one arrival time per message to STAMPS_FILE if given, and exits).
It advertises PIPELINING (RFC 2920) as Postfix and Exim do, unless --no-pipelining.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

EOD = b"\r\n.\r\n"


class Sink:
    def __init__(self, stamps: bool, pipelining: bool = True) -> None:
        self.ehlo = (b"250-sink\r\n" + (b"250-PIPELINING\r\n" if pipelining else b"")
                     + b"250-8BITMIME\r\n250 SIZE 52428800\r\n")
        self.messages = 0
        self.bytes = 0
        self.stamps: list[float] | None = [] if stamps else None

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 sink ESMTP\r\n")
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                verb = line[:4].upper()
                if verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    data = await reader.readuntil(EOD)
                    self.messages += 1
                    self.bytes += len(data)
                    if self.stamps is not None:
                        self.stamps.append(time.monotonic())
                    writer.write(b"250 2.0.0 queued\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    break
                elif verb == b"EHLO":
                    writer.write(self.ehlo)
                else:
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def main(port: int, stamps_file: str, pipelining: bool) -> None:
    sink = Sink(bool(stamps_file), pipelining)
    server = await asyncio.start_server(sink.session, "127.0.0.1", port, limit=1 << 20)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("ready", flush=True)
    async with server:
        await stop.wait()
    if stamps_file and sink.stamps is not None:
        with open(stamps_file, "w") as out:
            out.write("\n".join(f"{t:.6f}" for t in sink.stamps))
    print(f"messages {sink.messages} bytes {sink.bytes}", flush=True)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--no-pipelining"]
    asyncio.run(main(int(args[0]), args[1] if len(args) > 1 else "",
                     "--no-pipelining" not in sys.argv))
