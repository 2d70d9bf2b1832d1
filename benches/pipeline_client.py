#!/usr/bin/env python3
"""One SMTP session of N messages, pipelined (RFC 2920) or in lockstep; load.sh's workloads 7 and 8.

    pipeline_client.py HOST PORT --messages N --size BYTES --mode pipelined|lockstep [--bdat] [--force]

Greeting, EHLO, then N transactions of MAIL FROM, RCPT TO and the body, then QUIT:

- lockstep: every command in a write of its own, each waiting for its reply (one
  round trip per command; the body and its dot are one write, after the 354).
- pipelined (needs PIPELINING in the EHLO reply): MAIL, RCPT and DATA in one write;
  after the 354 the body, the dot and the next message's MAIL, RCPT and DATA in one
  write (DATA ends a group, RFC 2920 section 3.1: the body waits for its 354).
  Every reply is counted and checked in order, so a lost or extra reply cannot
  go unnoticed.
- --bdat (needs CHUNKING, RFC 3030): `BDAT <size> LAST` and the body in one write
  instead of DATA, the body and the dot. Pipelined: MAIL, RCPT, BDAT and the body in
  one write, the replies of a message read after the next message is written (at
  most two messages' replies outstanding).

The body is SIZE bytes of 80-byte lines (a few headers, then letters; no line
starts with a dot), the same bytes for DATA and BDAT. Prints one line to stdout,
`messages=N seconds=S msg_per_s=R`, timed from before the connect to the 221 of
QUIT. Exit 1 on any unexpected reply, a closed connection or a timeout (30 s per
read or write, --timeout); exit 3 if the server does not advertise PIPELINING
(pipelined) or CHUNKING (--bdat) and --force is not given (a client must not use
either unless advertised; --force is for servers that handle them unannounced).
Python 3 standard library only.
"""

import argparse
import socket
import sys
import time

CRLF = b"\r\n"


class ProtocolError(Exception):
    pass


class Session:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def send(self, data):
        self.sock.sendall(data)

    def _line(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ProtocolError("connection closed by the server"
                                    + (f" after {bytes(self.buf)!r}" if self.buf else ""))
            self.buf += chunk

    def reply(self, what, *codes):
        """Reads one reply (all its lines); fails unless its code is one of codes."""
        lines = []
        while True:
            line = self._line()
            if len(line) < 5 or not line.endswith(CRLF) or not line[:3].isdigit() \
                    or line[3:4] not in (b" ", b"-", b"\r"):
                raise ProtocolError(f"malformed reply line to {what}: {line!r}")
            if lines and line[:3] != lines[0][:3]:
                raise ProtocolError(f"reply code changed inside a reply to {what}: {lines + [line]!r}")
            lines.append(line)
            if line[3:4] != b"-":
                break
        code = int(lines[0][:3])
        if code not in codes:
            raise ProtocolError(f"unexpected reply to {what}: {b''.join(lines)!r} "
                                f"(expected {'/'.join(map(str, codes))})")
        return lines

    def leftover(self):
        return bytes(self.buf)


def make_body(size):
    """size bytes of CRLF-terminated lines, 80 bytes each (the last one 2..81)."""
    if size < 2:
        raise SystemExit("--size must be at least 2")
    head = (b"From: <bench@bench.example>\r\nTo: <sink@bench.example>\r\n"
            b"Subject: pipeline bench\r\n\r\n")
    if size < len(head) + 2:
        head = b""
    n = size - len(head)
    lengths = [80] * (n // 80)
    r = n % 80
    if r >= 2:
        lengths.append(r)
    elif r == 1:
        lengths[-1] += 1  # n >= 81 here
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    pattern = alphabet * 2
    lines = {k: pattern[: k - 2] + CRLF for k in set(lengths)}
    body = head + b"".join(lines[k] for k in lengths)
    assert len(body) == size and body.endswith(CRLF)
    return body


def dot_stuff(body):
    # make_body never starts a line with a dot; kept general all the same.
    if body.startswith(b"."):
        body = b"." + body
    return body.replace(b"\r\n.", b"\r\n..")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--messages", type=int, required=True)
    ap.add_argument("--size", type=int, required=True, help="body bytes per message")
    ap.add_argument("--mode", choices=("pipelined", "lockstep"), required=True)
    ap.add_argument("--bdat", action="store_true", help="BDAT <size> LAST instead of DATA (RFC 3030)")
    ap.add_argument("--force", action="store_true",
                    help="pipeline / send BDAT even if PIPELINING / CHUNKING is not advertised")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per socket read or write")
    ap.add_argument("--helo", default="client.bench.example")
    args = ap.parse_args()
    if args.messages < 1:
        ap.error("--messages must be at least 1")

    body = make_body(args.size)
    mail = b"MAIL FROM:<bench@bench.example>\r\n"
    rcpt = b"RCPT TO:<sink@bench.example>\r\n"
    if args.bdat:
        payload = b"BDAT %d LAST\r\n" % len(body) + body
    else:
        payload = dot_stuff(body) + b".\r\n"
    n = args.messages

    t0 = time.perf_counter()
    try:
        sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    except OSError as e:
        print(f"pipeline_client: connect to {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    sock.settimeout(args.timeout)  # every recv and sendall below
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s = Session(sock)
    try:
        s.reply("the greeting", 220)
        s.send(b"EHLO " + args.helo.encode() + CRLF)
        ehlo = s.reply("EHLO", 250)
        keywords = {l[4:].split(None, 1)[0].upper().decode("ascii", "replace")
                    for l in ehlo[1:] if l[4:].strip()}
        pipelined = args.mode == "pipelined"
        for needed, wanted in (("PIPELINING", pipelined), ("CHUNKING", args.bdat)):
            if wanted and needed not in keywords:
                if not args.force:
                    print(f"pipeline_client: the server does not advertise {needed} "
                          f"(EHLO: {' '.join(sorted(keywords)) or '-'}); --force uses it anyway",
                          file=sys.stderr)
                    return 3
                print(f"pipeline_client: {needed} not advertised; used anyway (--force)", file=sys.stderr)

        if not pipelined:
            for _ in range(n):
                s.send(mail)
                s.reply("MAIL", 250)
                s.send(rcpt)
                s.reply("RCPT", 250, 251)
                if args.bdat:
                    s.send(payload)
                    s.reply("BDAT LAST", 250)
                else:
                    s.send(b"DATA\r\n")
                    s.reply("DATA", 354)
                    s.send(payload)
                    s.reply("the end of the data", 250)
        elif not args.bdat:
            group = mail + rcpt + b"DATA\r\n"
            s.send(group)
            for i in range(n):
                if i:
                    s.reply(f"the end of the data (message {i})", 250)
                s.reply(f"MAIL (message {i + 1})", 250)
                s.reply(f"RCPT (message {i + 1})", 250, 251)
                s.reply(f"DATA (message {i + 1})", 354)
                s.send(payload + group if i + 1 < n else payload)
            s.reply(f"the end of the data (message {n})", 250)
        else:
            group = mail + rcpt + payload
            for i in range(n):
                s.send(group)
                if i:
                    s.reply(f"MAIL (message {i})", 250)
                    s.reply(f"RCPT (message {i})", 250, 251)
                    s.reply(f"BDAT LAST (message {i})", 250)
            s.reply(f"MAIL (message {n})", 250)
            s.reply(f"RCPT (message {n})", 250, 251)
            s.reply(f"BDAT LAST (message {n})", 250)

        if s.leftover():
            raise ProtocolError(f"unexpected bytes before QUIT: {s.leftover()!r}")
        s.send(b"QUIT\r\n")
        s.reply("QUIT", 221)
        t1 = time.perf_counter()
        if s.leftover():
            raise ProtocolError(f"unexpected bytes after QUIT's reply: {s.leftover()!r}")
    except (ProtocolError, OSError) as e:  # socket.timeout is an OSError
        kind = "timeout" if isinstance(e, TimeoutError) else type(e).__name__
        print(f"pipeline_client: {kind}: {e}", file=sys.stderr)
        return 1
    finally:
        sock.close()
    secs = t1 - t0
    print(f"messages={n} seconds={secs:.6f} msg_per_s={n / secs:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
