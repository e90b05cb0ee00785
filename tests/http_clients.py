#!/usr/bin/env python3
"""Clients curl cannot play, for tests/http_hardening_test.sh.

  raw PORT                  sends stdin as it is, prints the whole answer
  trickle PORT ...          many connections sending one header line at a time
  hold PORT ...             idle connections from one source address
  slow-download PORT PATH OUT RATE STARTED
                            a GET read at RATE bytes/s with a small receive
                            buffer, so the server cannot hand it all to the
                            kernel; STARTED is written once the headers are in
Every wait is bounded; the results are printed as JSON for jq.
"""
import json
import select
import socket
import sys
import time


def connect(port, source=None, receive_buffer=None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:  # before connect: no autotuning
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    if source is not None:
        sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    return sock


def raw(port):
    sock = connect(port)
    sock.sendall(sys.stdin.buffer.read())
    answer = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    sys.stdout.buffer.write(answer)


def closed_by_peer(sock):
    """True when the server closed (EOF or reset); never blocks."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(4096, socket.MSG_PEEK) == b""
    except OSError:
        return True


def options(argv, defaults):
    values = dict(defaults)
    for i in range(0, len(argv), 2):
        name = argv[i].lstrip("-").replace("-", "_")
        values[name] = type(defaults[name])(argv[i + 1])
    return values


def trickle(port, argv):
    """Each connection sends a request line, then one header line every
    --interval seconds and never the blank line that ends the headers.
    Writes --ready once every connection is open; prints, after --duration,
    how many were opened and when (seconds after opening) each was closed."""
    o = options(argv, {"sources": 1, "per_source": 10, "interval": 1.0, "duration": 10.0,
                       "ready": ""})
    connections = []
    refused = 0
    for source in range(o["sources"]):
        address = "127.0.0.%d" % (2 + source)
        for _ in range(o["per_source"]):
            try:
                sock = connect(port, address)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
                connections.append({"sock": sock, "opened": time.monotonic(), "closed": None})
            except OSError:
                refused += 1
    if o["ready"]:
        with open(o["ready"], "w") as ready:
            ready.write("%d\n" % len(connections))
    start = time.monotonic()
    next_line = start + o["interval"]
    line = 0
    while time.monotonic() - start < o["duration"]:
        now = time.monotonic()
        for c in connections:
            if c["closed"] is None and closed_by_peer(c["sock"]):
                c["closed"] = now - c["opened"]
        if now >= next_line:
            line += 1
            for c in connections:
                if c["closed"] is None:
                    try:
                        c["sock"].sendall(b"X-Trickle-%d: %d\r\n" % (line, line))
                    except OSError:
                        c["closed"] = now - c["opened"]
            next_line += o["interval"]
        time.sleep(0.05)
    closed = sorted(c["closed"] for c in connections if c["closed"] is not None)
    print(json.dumps({"opened": len(connections), "refused": refused, "lines_sent": line,
                      "closed": len(closed), "still_open": len(connections) - len(closed),
                      "first_closed_after": closed[0] if closed else None,
                      "last_closed_after": closed[-1] if closed else None}))


def hold(port, argv):
    """--count idle connections from --source; after --wait seconds, how many
    the server has closed (refused by a per-address limit) and how many are open."""
    o = options(argv, {"source": "127.0.0.3", "count": 10, "wait": 1.0})
    connections = []
    failed = 0
    for _ in range(o["count"]):
        try:
            connections.append(connect(port, o["source"]))
        except OSError:
            failed += 1
    time.sleep(o["wait"])
    closed = sum(1 for sock in connections if closed_by_peer(sock)) + failed
    print(json.dumps({"count": o["count"], "closed": closed, "open": o["count"] - closed}))


def slow_download(port, path, out, rate, started):
    sock = connect(port, receive_buffer=65536)
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n" % path.encode())
    received = b""
    body_bytes = 0
    status = None
    error = None
    start = time.monotonic()
    with open(out, "wb") as body:
        while True:
            try:
                chunk = sock.recv(16384)
            except OSError as e:
                error = str(e)
                break
            if not chunk:
                break
            if status is None:
                received += chunk
                if b"\r\n\r\n" not in received:
                    continue
                head, chunk = received.split(b"\r\n\r\n", 1)
                status = int(head.split(b" ")[1])
                with open(started, "w") as mark:
                    mark.write("%d\n" % status)
            body.write(chunk)
            body_bytes += len(chunk)
            ahead = body_bytes / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    print(json.dumps({"status": status, "bytes": body_bytes, "error": error}))


def main():
    command, port = sys.argv[1], int(sys.argv[2])
    if command == "raw":
        raw(port)
    elif command == "trickle":
        trickle(port, sys.argv[3:])
    elif command == "hold":
        hold(port, sys.argv[3:])
    elif command == "slow-download":
        slow_download(port, sys.argv[3], sys.argv[4], float(sys.argv[5]), sys.argv[6])
    else:
        sys.exit("unknown command " + command)


if __name__ == "__main__":
    main()
