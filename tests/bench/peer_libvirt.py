#!/usr/bin/python3
"""libvirt's side of the founding-workflow benchmark, on the test driver (in memory).

Same phases and shapes as workflow.rs; prints "phase seconds" lines.
Usage: peer_libvirt.py N chain|tree
"""
import sys
import time

import libvirt

n = int(sys.argv[1])
tree = sys.argv[2] == "tree"
conn = libvirt.open("test:///default")
dom = conn.lookupByName("test")
times = {}


def phase(name, fn):
    start = time.perf_counter()
    value = fn()
    times[name] = time.perf_counter() - start
    return value


def create():
    for i in range(n):
        dom.snapshotCreateXML("<domainsnapshot><name>s%d</name></domainsnapshot>" % i, 0)
        if tree and i % 4 == 3:
            dom.revertToSnapshot(dom.snapshotLookupByName("s%d" % (i // 2)), 0)


def dump():
    snaps = dom.listAllSnapshots(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL)
    return [(s.getName(), s.getXMLDesc(libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE), s.isCurrent()) for s in snaps]


def drop():
    # The test driver has no METADATA_ONLY; its plain delete only touches in-memory metadata.
    for root in dom.listAllSnapshots(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_ROOTS):
        root.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN)


def redefine(dumped):
    for name, xml, current in dumped:
        flags = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
        if current:
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
        dom.snapshotCreateXML(xml, flags)


def walk(dumped):
    for name, _, _ in dumped:
        snap = dom.snapshotLookupByName(name)
        try:
            snap.getParent()
        except libvirt.libvirtError:
            pass


def delete():
    for root in dom.listAllSnapshots(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_ROOTS):
        root.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN)


libvirt.registerErrorHandler(lambda ctx, err: None, None)
phase("create", create)
dumped = phase("dump", dump)
phase("drop", drop)
phase("redefine", lambda: redefine(dumped))
phase("walk", lambda: walk(dumped))
phase("delete", delete)
for name, seconds in times.items():
    print(name, seconds)
