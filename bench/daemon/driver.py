#!/usr/bin/python3
"""One phase of the daemon benchmark, through python3-libvirt.

    driver.py up URI PREFIX COUNT KERNEL MACHINE
    driver.py restart URI PREFIX COUNT CLIENTS
    driver.py down URI PREFIX COUNT

up defines COUNT domains PREFIX0 .. PREFIX<COUNT-1> (64 MiB, one vCPU, the
kernel KERNEL on machine MACHINE, no disks, no serial port), starts them
one after the other as `virsh start` does, waits until the daemon reports
every one running, then times listAllDomains(0) in this process (the
client's own start-up left out). It prints one line:
    define_ms=.. start_ms=.. start_first_ms=.. start_med_ms=.. list_min_ms=..
    list_med_ms=.. listed=..
(start_first_ms and start_med_ms: the first create() call, the median one.)
restart destroys them and starts them again from CLIENTS connections at
once, each in its own thread with its share of the domains, while another
process times listAllDomains over its own connection every 5 ms (in this
process it would also time the interpreter's lock, which ten client
threads hold in turn between their calls); it prints
    par_start_ms=.. busy_list_med_ms=.. busy_list_max_ms=..
(the time until all run again, and the list calls made meanwhile).
down destroys and undefines them and prints destroy_ms=.. undefine_ms=..
left=N, N being the domains the daemon still lists afterwards.
Errors go to stderr with status 1."""
import multiprocessing
import statistics
import sys
import threading
import time

import libvirt

LIST_CALLS = 30
RUNNING_TIMEOUT_S = 300


def domain_xml(name, kernel, machine):
    # ACPI on: without it the kit's ticker cannot sleep in HLT and the
    # guest busy-polls the PIT. No USB controller, no balloon, no serial
    # port: the least libvirt lets QEMU start with, and what cvirt has.
    return f"""<domain type='kvm'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='{machine}'>hvm</type><kernel>{kernel}</kernel>
      <cmdline>cpus=1</cmdline></os>
  <features><acpi/></features>
  <devices><controller type='usb' model='none'/><memballoon model='none'/></devices>
</domain>
"""


def ms(t0):
    return (time.monotonic() - t0) * 1000.0


def all_running(conn, names):
    doms = conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
    running = {d.name() for d in doms if d.state()[0] == libvirt.VIR_DOMAIN_RUNNING}
    return names <= running


def up(conn, prefix, count, kernel, machine):
    names = [f"{prefix}{i}" for i in range(count)]
    xmls = [domain_xml(n, kernel, machine) for n in names]
    t0 = time.monotonic()
    doms = [conn.defineXML(x) for x in xmls]
    define_ms = ms(t0)

    t0 = time.monotonic()
    each = []
    for d in doms:
        t1 = time.monotonic()
        d.create()
        each.append(ms(t1))
    wait_running(conn, set(names))
    start_ms = ms(t0)

    times = []
    listed = 0
    for _ in range(LIST_CALLS):
        t0 = time.monotonic()
        listed = len(conn.listAllDomains(0))
        times.append(ms(t0))
    print(f"define_ms={define_ms:.1f} start_ms={start_ms:.1f} "
          f"start_first_ms={each[0]:.1f} start_med_ms={statistics.median(each):.1f} "
          f"list_min_ms={min(times):.3f} list_med_ms={statistics.median(times):.3f} "
          f"listed={listed}")


def wait_running(conn, names):
    deadline = time.monotonic() + RUNNING_TIMEOUT_S
    while not all_running(conn, names):
        if time.monotonic() > deadline:
            raise RuntimeError("not every domain reported running")
        time.sleep(0.01)


def list_meanwhile(uri, ready, stop, out):
    """In its own process: listAllDomains every 5 ms until stop is set."""
    conn = libvirt.open(uri)
    conn.listAllDomains(0)
    ready.set()
    lat = []
    while not stop.is_set():
        t1 = time.monotonic()
        conn.listAllDomains(0)
        lat.append(ms(t1))
        time.sleep(0.005)
    conn.close()
    out.put(lat)


def restart(uri, conn, prefix, count, clients):
    names = [f"{prefix}{i}" for i in range(count)]
    for n in names:
        d = conn.lookupByName(n)
        if d.isActive():
            d.destroy()
    conns = [libvirt.open(uri) for _ in range(clients)]
    errors = []

    def worker(c, part):
        try:
            for n in part:
                c.lookupByName(n).create()
        except libvirt.libvirtError as ex:
            errors.append(str(ex))

    threads = [threading.Thread(target=worker, args=(c, names[i::clients]))
               for i, c in enumerate(conns)]
    # A fresh interpreter, not a fork of this threaded one.
    ctx = multiprocessing.get_context("spawn")
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    lister = ctx.Process(target=list_meanwhile, args=(uri, ready, stop, out))
    lister.start()
    if not ready.wait(60):
        raise RuntimeError("the listing process did not start")
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    lat = out.get()
    lister.join()
    for c in conns:
        c.close()
    if errors:
        raise RuntimeError(errors[0])
    wait_running(conn, set(names))
    par_ms = ms(t0)
    if not lat:
        lat = [0.0]
    print(f"par_start_ms={par_ms:.1f} busy_list_med_ms={statistics.median(lat):.3f} "
          f"busy_list_max_ms={max(lat):.3f}")


def down(conn, prefix, count):
    names = [f"{prefix}{i}" for i in range(count)]
    doms = [conn.lookupByName(n) for n in names]
    t0 = time.monotonic()
    for d in doms:
        if d.isActive():
            d.destroy()
    destroy_ms = ms(t0)
    t0 = time.monotonic()
    for d in doms:
        d.undefine()
    undefine_ms = ms(t0)
    left = [d.name() for d in conn.listAllDomains(0) if d.name().startswith(prefix)]
    print(f"destroy_ms={destroy_ms:.1f} undefine_ms={undefine_ms:.1f} left={len(left)}")


def main():
    need = {"up": 7, "restart": 6, "down": 5}
    if len(sys.argv) < 2 or len(sys.argv) != need.get(sys.argv[1], 0):
        print(__doc__, file=sys.stderr)
        return 2
    # Keep libvirt's default error printer off stderr: the exception says it.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.open(sys.argv[2])
    try:
        if sys.argv[1] == "up":
            up(conn, sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6])
        elif sys.argv[1] == "restart":
            restart(sys.argv[2], conn, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        else:
            down(conn, sys.argv[3], int(sys.argv[4]))
    except (libvirt.libvirtError, RuntimeError) as ex:
        print(f"bench/daemon: {sys.argv[1]} on {sys.argv[2]}: {ex}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
