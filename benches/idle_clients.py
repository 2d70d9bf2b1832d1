#!/usr/bin/env python3
"""Hold COUNT idle SMTP connections open to HOST:PORT (used by benches/load.sh).

Connects in batches of BATCH and reads each connection's 220 greeting before the
next batch (so a server with a short accept backlog is never flooded), then prints
"ready GREETED" on stdout and holds every socket until STOPFILE exists or HOLD
seconds pass. Then it closes them all and exits. Every wait is bounded.

usage: idle_clients.py HOST PORT COUNT STOPFILE [HOLD] [BATCH]
"""

import os
import socket
import sys
import time


def read_greeting(sock, deadline):
    data = b""
    while not data.endswith(b"\r\n") and len(data) < 4096:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except OSError:
            return False
        if not chunk:
            return False
        data += chunk
    return data.startswith(b"220")


def main():
    host, port, count, stopfile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    hold = float(sys.argv[5]) if len(sys.argv) > 5 else 120.0
    batch = int(sys.argv[6]) if len(sys.argv) > 6 else 50
    socks = []
    greeted = 0
    start = time.monotonic()
    give_up = start + 120.0
    while len(socks) < count and time.monotonic() < give_up:
        fresh = []
        for _ in range(min(batch, count - len(socks))):
            try:
                fresh.append(socket.create_connection((host, port), timeout=10))
            except OSError as e:
                print(f"connect failed: {e}", file=sys.stderr)
                break
        if not fresh:
            break
        deadline = time.monotonic() + 10.0
        for s in fresh:
            if read_greeting(s, deadline):
                greeted += 1
        socks.extend(fresh)
    elapsed = time.monotonic() - start
    print(f"ready {greeted} {len(socks)} {elapsed:.2f}", flush=True)
    end = time.monotonic() + hold
    while time.monotonic() < end and not os.path.exists(stopfile):
        time.sleep(0.05)
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


if __name__ == "__main__":
    main()
