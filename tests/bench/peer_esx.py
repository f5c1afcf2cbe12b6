#!/usr/bin/python3
"""libvirt's side of the vSphere benchmark: libvirt's esx driver through python3-libvirt.

Same operations and order as vsphere.rs (`one`); prints "op median_seconds min_trips max_trips"
lines. Round trips are read from the bench's counting proxy (GET /__virtplug_bench/count on
the same port, outside the timed region).
Usage: peer_esx.py PORT COUNT_PORT N VM   (password in BENCH_ESX_PASSWORD)
"""
import http.client
import os
import sys
import time

import libvirt

port, count_port, n, vm = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
password = os.environ["BENCH_ESX_PASSWORD"]
uri = "esx://root@127.0.0.1:%d/?no_verify=1&transport=http" % port
OPS = ["connect", "connect+list", "create", "list", "tree", "current", "revert", "delete"]


def auth_cb(creds, _data):
    for cred in creds:
        if cred[0] == libvirt.VIR_CRED_AUTHNAME:
            cred[4] = "root"
        elif cred[0] in (libvirt.VIR_CRED_PASSPHRASE, libvirt.VIR_CRED_NOECHOPROMPT):
            cred[4] = password
        else:
            return -1
    return 0


AUTH = [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_NOECHOPROMPT, libvirt.VIR_CRED_PASSPHRASE], auth_cb, None]
counter = http.client.HTTPConnection("127.0.0.1", count_port) if count_port else None
times = {op: [] for op in OPS}
trips = {op: [] for op in OPS}


def count():
    if counter is None:
        return None
    counter.request("GET", "/__virtplug_bench/count")
    return int(counter.getresponse().read())


def measure(op, fn):
    before = count()
    start = time.perf_counter()
    value = fn()
    times[op].append(time.perf_counter() - start)
    after = count()
    if before is not None:
        trips[op].append(after - before)
    return value


def open_conn():
    return libvirt.openAuth(uri, AUTH, 0)


def connect_and_list():
    conn = open_conn()
    return conn, conn.lookupByName(vm).snapshotListNames(0)


def tree(dom):
    """What `virsh snapshot-list --tree` asks for: every name, then each one's parent."""
    parents = {}
    for name in dom.snapshotListNames(0):
        try:
            parents[name] = dom.snapshotLookupByName(name).getParent().getName()
        except libvirt.libvirtError:
            parents[name] = None
    return parents


libvirt.registerErrorHandler(lambda ctx, err: None, None)
for _ in range(n):
    measure("connect", open_conn).close()
for _ in range(n):
    measure("connect+list", connect_and_list)[0].close()

conn = open_conn()
dom = conn.lookupByName(vm)
XML = "<domainsnapshot><name>%s</name></domainsnapshot>"
base = dom.snapshotCreateXML(XML % "base", 0)
for name in ["p1", "p2", "p3", "p4"]:
    dom.snapshotCreateXML(XML % name, 0)
dom.revertToSnapshot(base, 0)
for i in range(n):
    snap = measure("create", lambda: dom.snapshotCreateXML(XML % ("b%d" % i), 0))
    names = measure("list", lambda: dom.snapshotListNames(0))
    assert len(names) == 6, names
    measure("tree", lambda: tree(dom))
    current = measure("current", lambda: dom.snapshotCurrent(0))
    assert current.getName() == "b%d" % i
    measure("revert", lambda: dom.revertToSnapshot(base, 0))
    measure("delete", lambda: snap.delete(0))
base.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN)
conn.close()

for op in OPS:
    samples = sorted(times[op])
    t = trips[op] or [-1]
    print(op, samples[len(samples) // 2], min(t), max(t))
