#!/usr/bin/env python3
"""One round of the snapshot benchmark for one monitor and memory size.

    driver.py cvirt|qemu MEM_MIB WORKDIR VMM KERNEL QMP_PY

Boots the kit program "ticks" (a line every 2 ms of guest time), saves it
to a file over QMP, restores it in a new process, live-migrates the
restored VM to a third process on loopback, and prints one line:
save_ms=.. restore_ms=.. migrate_ms=.. downtime_ms=..
Restore is measured from exec to the guest's first line. Errors go to
stderr with status 1."""
import os
import subprocess
import sys
import threading
import time

MON, MEM, WORK, VMM, KERNEL, QMP_PY = sys.argv[1:7]
sys.path.insert(0, os.path.dirname(QMP_PY))
import qmp  # noqa: E402

QEMU = ["qemu-system-x86_64", "-accel", "kvm",
        "-cpu", "host,kvm-pv-ipi=off,kvm-pv-sched-yield=off", "-M", "q35",
        "-m", MEM + "M", "-nodefaults", "-no-user-config", "-display", "none",
        "-serial", "stdio", "-kernel", KERNEL]


class VM:
    """A monitor process whose console lines are timestamped as they come."""

    def __init__(self, name, extra):
        self.sock = os.path.join(WORK, name + ".sock")
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        if MON == "cvirt":
            argv = [VMM] + extra + ["--control", self.sock]
        else:
            argv = QEMU + extra + ["-qmp", "unix:%s,server=on,wait=off" % self.sock]
        self.t_exec = time.monotonic()
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=open(os.path.join(WORK, name + ".err"), "w"))
        self.first = None
        self.lines = 0
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.c = None

    def _read(self):
        for line in self.p.stdout:
            if line.startswith(b"tick "):
                with self.cond:
                    if self.first is None:
                        self.first = time.monotonic()
                    self.lines += 1
                    self.cond.notify_all()

    def wait_lines(self, n, timeout=120):
        with self.cond:
            if not self.cond.wait_for(lambda: self.lines >= n, timeout):
                raise RuntimeError("%s: only %d lines" % (self.sock, self.lines))

    def qmp(self):
        if self.c is None:
            for _ in range(2000):
                if os.path.exists(self.sock):
                    break
                time.sleep(0.005)
            self.c = qmp.Client(self.sock, timeout=120)
            self.c.negotiate()
        return self.c

    def quit(self):
        try:
            self.qmp().cmd("quit")
        except Exception:
            pass
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def wait_done(vm):
    """Polls query-migrate (QEMU 7.2 sends no MIGRATION events unless asked)."""
    c = vm.qmp()
    while True:
        q = c.execute("query-migrate")
        st = q.get("status")
        if st == "completed":
            return q
        if st in ("failed", "cancelled"):
            raise RuntimeError("migration %s: %s" % (st, q))
        time.sleep(0.002)


def main():
    snap = os.path.join(WORK, "snap-%s-%s" % (MON, MEM))
    base = ["--kernel", KERNEL, "--memory", MEM + "M", "--console", "stdio"] if MON == "cvirt" else []
    src = VM("src", base)
    src.wait_lines(50)
    c = src.qmp()
    if MON == "cvirt":
        t0 = time.monotonic()
        c.execute("migrate", {"uri": "file:" + snap})
        wait_done(src)
    else:
        t0 = time.monotonic()
        c.execute("migrate", {"uri": "exec:cat > " + snap})
        wait_done(src)
    save_ms = (time.monotonic() - t0) * 1000
    src.quit()

    if MON == "cvirt":
        rest = VM("rest", ["--restore", snap, "--console", "stdio"])
    else:
        rest = VM("rest", ["-incoming", "exec:cat " + snap])
    rest.wait_lines(1)
    restore_ms = (rest.first - rest.t_exec) * 1000
    rest.wait_lines(20)

    port = str(20000 + os.getpid() % 20000)
    dst = VM("dst", base + ["--incoming", "tcp:127.0.0.1:" + port] if MON == "cvirt"
             else ["-incoming", "tcp:127.0.0.1:" + port])
    time.sleep(0.3 if MON == "cvirt" else 1.0)
    rc = rest.qmp()
    rc.execute("migrate-set-parameters", {"downtime-limit": 50})
    rc.execute("migrate", {"uri": "tcp:127.0.0.1:" + port})
    q = wait_done(rest)
    dst.wait_lines(rest.lines + 1 if MON == "qemu" else 1)
    rest.quit()
    dst.quit()
    os.unlink(snap)
    print("save_ms=%.1f restore_ms=%.1f migrate_ms=%d downtime_ms=%d"
          % (save_ms, restore_ms, q["total-time"], q["downtime"]))


try:
    main()
except Exception as ex:  # one line for the runner
    sys.stderr.write("bench/snapshot %s %sM: %s\n" % (MON, MEM, ex))
    sys.exit(1)
