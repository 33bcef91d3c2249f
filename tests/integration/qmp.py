#!/usr/bin/env python3
"""A small QMP client (standard library only).

As a command:  qmp.py SOCKET COMMAND [JSON-ARGS]
    connects, negotiates, runs COMMAND and prints the reply's "return"
    value as JSON; an error reply prints {"error": ...} on stderr and exits 1.

As a module:
    with qmp.Client(path) as c:
        c.negotiate()
        c.cmd("query-status")          # the reply object
        c.execute("stop")              # the "return" value, or raises QMPError
        c.wait_event("STOP", timeout=5)
"""
import json
import socket
import sys
import time


class QMPError(Exception):
    def __init__(self, error):
        super().__init__("%s: %s" % (error.get("class"), error.get("desc")))
        self.error = error


class Client:
    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.events = []
        self.next_id = 0
        self.greeting = self.recv()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj) + "\n")

    def recv(self, timeout=None):
        """The next JSON object from the server; raises EOFError when the
        server closed the connection, socket.timeout on timeout."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed by the server")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def reply(self, want_id=None, timeout=None):
        """The next reply (not an event); events seen meanwhile are kept."""
        while True:
            msg = self.recv(timeout)
            if "event" in msg:
                self.events.append(msg)
                continue
            if want_id is None or msg.get("id") == want_id:
                return msg

    def cmd(self, name, args=None, timeout=None):
        """Sends a command with a fresh id and returns the whole reply."""
        self.next_id += 1
        req = {"execute": name, "id": self.next_id}
        if args is not None:
            req["arguments"] = args
        self.send(req)
        return self.reply(self.next_id, timeout)

    def execute(self, name, args=None, timeout=None):
        r = self.cmd(name, args, timeout)
        if "error" in r:
            raise QMPError(r["error"])
        return r["return"]

    def negotiate(self):
        return self.execute("qmp_capabilities")

    def wait_event(self, name, timeout=10.0):
        """The first event called name, already received or still to come."""
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no %s event within %.1f s" % (name, timeout))
            msg = self.recv(left)
            if "event" in msg:
                self.events.append(msg)


def main(argv):
    if len(argv) not in (3, 4):
        sys.stderr.write("usage: qmp.py SOCKET COMMAND [JSON-ARGS]\n")
        return 2
    args = json.loads(argv[3]) if len(argv) == 4 else None
    with Client(argv[1]) as c:
        c.negotiate()
        r = c.cmd(argv[2], args)
    if "error" in r:
        sys.stderr.write(json.dumps(r) + "\n")
        return 1
    print(json.dumps(r["return"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
