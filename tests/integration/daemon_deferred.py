# Driven by daemon_deferred.sh: python3-libvirt against cvirtd while a
# start waits for a VMM held at a gate (the wrapper cvirtd runs as its VMM
# touches GATE/started, then waits for GATE/go; with GATE/fail it exits
# instead of running the VMM). Prints one TAP-style line per check
# ("ok - ..." / "not ok - ..."); the shell script numbers them.
#
#   python3 daemon_deferred.py URI GATE DOMAIN
import os
import subprocess
import sys
import threading
import time

import libvirt

URI, GATE, NAME = sys.argv[1:4]
BOUND = 30          # seconds any single call may take before it counts as stuck


def check(cond, desc):
    print(("ok - " if cond else "not ok - ") + desc, flush=True)


order = []
order_lock = threading.Lock()


def note(tag):
    with order_lock:
        order.append(tag)


def before(a, b):
    return a in order and b in order and order.index(a) < order.index(b)


def gate(name):
    return os.path.join(GATE, name)


def gate_reset():
    for f in ("started", "go", "fail"):
        try:
            os.unlink(gate(f))
        except FileNotFoundError:
            pass


def wait_for(pred, seconds=BOUND):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def bounded(fn, tag):
    """Runs fn in a thread; (finished, result or exception) after BOUND s."""
    box = {}

    def run():
        try:
            box["v"] = fn()
        except libvirt.libvirtError as e:
            box["v"] = e
        note(tag)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(BOUND)
    return (not t.is_alive(), box.get("v"))


def starter(dom, box, tag):
    def run():
        try:
            dom.create()
            box["rc"] = 0
        except libvirt.libvirtError as e:
            box["rc"] = e
        note(tag)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


libvirt.virEventRegisterDefaultImpl()


def event_loop():
    while True:
        libvirt.virEventRunDefaultImpl()


threading.Thread(target=event_loop, daemon=True).start()

a = libvirt.open(URI)
b = libvirt.open(URI)


def on_lifecycle(conn, dom, event, detail, opaque):
    if dom.name() == NAME and event == libvirt.VIR_DOMAIN_EVENT_STARTED:
        note("event-started")


b.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, on_lifecycle, None)
dom = a.lookupByName(NAME)

# ---- a start held at the gate; everything else is answered meanwhile ----
gate_reset()
box = {}
t = starter(dom, box, "start")
check(wait_for(lambda: os.path.exists(gate("started"))),
      "the VMM wrapper runs: a start is in flight")
done, v = bounded(lambda: b.listAllDomains(0), "list-other")
check(done and not isinstance(v, Exception) and NAME in [d.name() for d in v],
      "another client's listAllDomains is answered during the start")
done, v = bounded(lambda: b.getVersion(), "version-other")
check(done and isinstance(v, int) and v > 0,
      "another client's getVersion is answered during the start")
# The client that asked for the start gets other replies on the same
# connection before the start's (libvirt's client matches them by serial).
done, v = bounded(lambda: a.getVersion(), "version-same")
check(done and isinstance(v, int), "the starting client's own getVersion is answered first")
done, v = bounded(lambda: b.lookupByName(NAME).suspend(), "suspend-locked")
check(done and isinstance(v, libvirt.libvirtError) and
      v.get_error_code() == libvirt.VIR_ERR_OPERATION_TIMEOUT and
      "cannot acquire state change lock" in str(v),
      "a suspend meanwhile gets the state change lock error: %s" % v)
done, v = bounded(lambda: subprocess.run(["virsh", "-c", URI, "list", "--all"],
                                         capture_output=True, text=True, timeout=BOUND),
                  "virsh-list")
check(done and v.returncode == 0 and NAME in v.stdout,
      "Debian's virsh list --all is answered during the start")
check(t.is_alive() and "start" not in order and "event-started" not in order,
      "the start is still waiting at the gate after all of them")
open(gate("go"), "w").close()
t.join(BOUND * 2)
check(box.get("rc") == 0, "the start then completes: %s" % box.get("rc"))
check(dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING, "the domain runs")
check(all(before(x, "start") for x in
          ("list-other", "version-other", "version-same", "suspend-locked", "virsh-list")),
      "completion order: every other call before the start (%s)" % " ".join(order))
check(wait_for(lambda: "event-started" in order, 10) and before("virsh-list", "event-started"),
      "the Started event comes once the VMM answered, after the other calls")
dom.destroy()
check(dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF, "destroy (deferred too) shuts it off")

# ---- a VMM that fails at the gate: one clear error, nothing left ----
gate_reset()
open(gate("fail"), "w").close()
box = {}
t = starter(dom, box, "start-fail")
check(wait_for(lambda: os.path.exists(gate("started"))), "a second start reaches the gate")
done, v = bounded(lambda: b.numOfDomains(), "count-during-fail")
check(done and v == 1, "numOfDomains during it counts the starting domain: %s" % v)
open(gate("go"), "w").close()
t.join(BOUND * 2)
rc = box.get("rc")
check(isinstance(rc, libvirt.libvirtError) and "told to fail" in str(rc),
      "the failed start's error carries the VMM's last log line: %s" % rc)
st = dom.state()
check(st[0] == libvirt.VIR_DOMAIN_SHUTOFF and st[1] == libvirt.VIR_DOMAIN_SHUTOFF_FAILED,
      "the domain is shut off (failed): %s" % (st,))
check(not dom.isActive() and dom.ID() == -1, "no id, not active")

# ---- the client that started goes away mid-start ----
gate_reset()
child = subprocess.Popen([sys.executable, "-c",
                          "import libvirt,sys; libvirt.open(sys.argv[1]).lookupByName("
                          "sys.argv[2]).create()", URI, NAME])
check(wait_for(lambda: os.path.exists(gate("started"))), "a third start reaches the gate")
child.kill()
child.wait()
open(gate("go"), "w").close()
check(wait_for(lambda: "event-started" in order and order.count("event-started") == 2),
      "the start of the vanished client completes (Started event)")
check(dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING, "the domain runs after its client left")
done, v = bounded(lambda: b.getVersion(), "version-after")
check(done and isinstance(v, int), "the daemon still answers")

# ---- a save that hangs in its migration ----
# cvirt-vmm writes the image to PATH.tmp, then renames it: a FIFO nobody
# reads there blocks it in the middle of migrate.
image = os.path.join(GATE, "gated.save")
fifo = image + ".tmp"
os.mkfifo(fifo)
sbox = {}


def saver():
    try:
        dom.save(image)
        sbox["rc"] = 0
    except libvirt.libvirtError as e:
        sbox["rc"] = e
    note("save-hung")


ts = threading.Thread(target=saver, daemon=True)
ts.start()


def save_in_flight():
    try:
        b.lookupByName(NAME).suspend()
        b.lookupByName(NAME).resume()
    except libvirt.libvirtError as e:
        return "remoteDispatchDomainSave" in str(e)
    return False


check(wait_for(save_in_flight), "a save blocked on a FIFO nobody reads stays in flight")
done, v = bounded(lambda: b.lookupByName(NAME).destroy(), "destroy-save")
check(done and v == 0, "a destroy during it is not refused: %s" % v)
ts.join(BOUND)
rc = sbox.get("rc")
check(isinstance(rc, libvirt.libvirtError) and "destroyed during its save" in str(rc),
      "the save's own caller gets a clear error: %s" % rc)
check(not os.path.exists(image), "no save image is left")
os.unlink(fifo)
st = dom.state()
check(st[0] == libvirt.VIR_DOMAIN_SHUTOFF and st[1] == libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED,
      "the domain is shut off (destroyed): %s" % (st,))

# ---- a destroy during a start held at the gate ----
gate_reset()
box = {}
t = starter(dom, box, "start-destroyed")
check(wait_for(lambda: os.path.exists(gate("started"))), "a fourth start reaches the gate")
done, v = bounded(lambda: b.lookupByName(NAME).destroy(), "destroy-start")
check(done and v == 0, "a destroy during the start succeeds at once: %s" % v)
t.join(BOUND)
rc = box.get("rc")
check(isinstance(rc, libvirt.libvirtError) and "destroyed during its start" in str(rc),
      "the start's own caller gets a clear error: %s" % rc)
check(not dom.isActive() and dom.ID() == -1, "destroyed: no id, not active")
a.close()
b.close()
