#!/usr/bin/env python3
"""Hold COUNT idle SMTP connections open to HOST:PORT (used by benches/load.sh).

Connects in batches of BATCH and reads each connection's 220 greeting before the
next batch (so a server with a short accept backlog is never flooded), then prints
"ready GREETED" on stdout and holds every socket until STOPFILE exists or HOLD
seconds pass. Then it closes them all and exits. Every wait is bounded.

With MESSAGE (bytes, > 0), each connection first sends, in one write, EHLO, MAIL,
RCPT, DATA, a MESSAGE-byte body of 100-byte lines and the final dot, and reads the
five replies (it counts as greeted only if the message got a 250): what a
connection costs when it stays idle after delivering a message.

usage: idle_clients.py HOST PORT COUNT STOPFILE [HOLD] [BATCH] [MESSAGE]
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


def read_replies(sock, count, deadline):
    """Reads COUNT final reply lines; returns the last one (b"" on failure)."""
    data = b""
    last = b""
    while count > 0:
        end = data.find(b"\r\n")
        if end >= 0:
            line, data = data[:end], data[end + 2:]
            if len(line) < 4 or line[3:4] != b"-":
                count -= 1
                last = line
            continue
        left = deadline - time.monotonic()
        if left <= 0 or len(data) > 65536:
            return b""
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except OSError:
            return b""
        if not chunk:
            return b""
        data += chunk
    return last


def session(size):
    line = b"x" * 98 + b"\r\n"
    body = line * (size // len(line))
    return (b"EHLO idle.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
            b"DATA\r\n" + body + b".\r\n")


def main():
    host, port, count, stopfile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    hold = float(sys.argv[5]) if len(sys.argv) > 5 else 120.0
    batch = int(sys.argv[6]) if len(sys.argv) > 6 else 50
    message = int(sys.argv[7]) if len(sys.argv) > 7 else 0
    transaction = session(message) if message > 0 else None
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
            if not read_greeting(s, deadline):
                continue
            if transaction is None:
                greeted += 1
                continue
            try:
                s.settimeout(10)
                s.sendall(transaction)
            except OSError:
                continue
            if read_replies(s, 5, time.monotonic() + 10.0).startswith(b"250"):
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
