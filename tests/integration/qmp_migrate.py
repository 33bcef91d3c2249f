#!/usr/bin/env python3
"""Migration drivers shared by the save/restore and migration tests (on
qmp.py, standard library only).

  qmp_migrate.py migrate SOCKET URI [--downtime-limit MS] [--cancel]
      runs migrate (file:PATH or tcp:HOST:PORT; with --cancel,
      migrate_cancel as soon as the first MIGRATION event comes) and waits
      for its end; prints one line: the MIGRATION statuses seen (comma
      separated), query-migrate's status, its downtime ("-" when absent)
      and query-status's status, e.g.
      "setup,active,completed completed 12 postmigrate".
  qmp_migrate.py disk-matches DISK CONSOLE
      exits 0 when DISK holds exactly what the kit's blk_writer says on
      CONSOLE it wrote (its "# seed S, ..., capacity C sectors" line and
      its last "flushed N"): write i < N at sector r_i % C with its
      pattern, the last write to a sector winning, zeros elsewhere
      (SHA-256 of the expected and actual images); prints a comment line.
"""
import hashlib
import os
import re
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qmp  # noqa: E402


def migrate(sock, uri, downtime_limit=None, cancel=False, timeout=30):
    """(statuses, query-migrate status, downtime or "-", run state)."""
    with qmp.Client(sock) as c:
        c.negotiate()
        if downtime_limit is not None:
            c.execute("migrate-set-parameters", {"downtime-limit": downtime_limit})
        c.execute("migrate", {"uri": uri})
        seen = []
        if cancel:
            seen.append(c.wait_event("MIGRATION", timeout=10)["data"]["status"])
            c.execute("migrate_cancel")
        while not seen or seen[-1] not in ("completed", "failed", "cancelled"):
            seen.append(c.wait_event("MIGRATION", timeout=timeout)["data"]["status"])
        q = c.execute("query-migrate")
        return (",".join(seen), q["status"], str(q.get("downtime", "-")),
                c.execute("query-status")["status"])


def blk_writer_image(console):
    """The disk image blk_writer's console says it wrote, or None."""
    m = re.search(r"# seed (\d+), k \d+, depth \d+, capacity (\d+) sectors", console)
    n = [int(x) for x in re.findall(r"^flushed (\d+)$", console, re.M)]
    if not m or not n:
        return None, None
    seed, cap, count = int(m.group(1)), int(m.group(2)), n[-1]
    M = 0xffffffff
    img, r = bytearray(cap * 512), seed
    for i in range(count):
        r ^= (r << 13) & M
        r ^= r >> 17
        r ^= (r << 5) & M
        s = r % cap
        h = (seed * 0x85ebca6b ^ i * 0xc2b2ae35 ^ s * 0x27d4eb2f) & M
        h ^= h >> 15
        h = (h * 0x2c1b3c6d) & M
        h ^= h >> 12
        img[s * 512:(s + 1) * 512] = struct.pack(
            "<128I", seed, i, s, *[h ^ ((j * 0x9e3779b9) & M) for j in range(3, 128)])
    return img, (count, seed, cap)


def main(argv):
    if len(argv) >= 4 and argv[1] == "migrate":
        rest = argv[4:]
        cancel = "--cancel" in rest
        limit = None
        if "--downtime-limit" in rest:
            limit = int(rest[rest.index("--downtime-limit") + 1])
        print(" ".join(migrate(argv[2], argv[3], limit, cancel)))
        return 0
    if len(argv) == 4 and argv[1] == "disk-matches":
        with open(argv[3], errors="replace") as f:
            img, info = blk_writer_image(f.read())
        if img is None:
            print("# no seed/capacity line or no flushed line on the console")
            return 1
        want = hashlib.sha256(img).hexdigest()
        with open(argv[2], "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        print("# %d writes of seed %d over %d sectors: expected sha256 %s, disk %s"
              % (info + (want[:16], got[:16])))
        return 0 if want == got else 1
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
