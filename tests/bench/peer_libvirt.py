#!/usr/bin/python3
"""libvirt's side of the founding-workflow benchmark, through python3-libvirt.

Same phases and shapes as workflow.rs; prints "phase seconds" lines.
Usage:
  peer_libvirt.py N chain|tree [URI]     the workflow (URI defaults to libvirt's in-process
                                         test driver, test:///default; the libvirt-wire section
                                         passes a server's URI: libvirtd's test driver or virtplugd)
  peer_libvirt.py lookup S CALLS URI     S snapshots (a chain), then CALLS snapshotLookupByName
                                         round trips; prints "lookup_us <microseconds per call>"
  peer_libvirt.py echo BYTES CALLS PATH  CALLS round trips of one BYTES-long packet with libvirt's
                                         framing on the unix socket PATH (the floor server of
                                         `virtplug-bench libvirt-floor`); prints "echo_us"
The workflow also prints "calls", the remote calls its timed phases made.
Each run checks the snapshot count after every phase (outside the timings), so a server that
skips work fails the run instead of looking fast.
"""
import os
import socket
import struct
import sys
import time

import libvirt

libvirt.registerErrorHandler(lambda ctx, err: None, None)
# The libvirt-wire section names the server's process so each phase also reports the server's CPU.
SERVER_PID = os.environ.get("VIRTPLUG_BENCH_SERVER_PID")


def server_cpu():
    """The server's user + system CPU seconds so far (0 when no server is named)."""
    if not SERVER_PID:
        return 0.0
    with open("/proc/%s/stat" % SERVER_PID) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def expect(dom, n, what):
    got = dom.snapshotNum(0)
    if got != n:
        sys.exit("after %s: %d snapshots, expected %d" % (what, got, n))


def lookup(snapshots, calls, uri):
    conn = libvirt.open(uri)
    dom = conn.lookupByName("test")
    for i in range(snapshots):
        dom.snapshotCreateXML("<domainsnapshot><name>s%d</name></domainsnapshot>" % i, 0)
    expect(dom, snapshots, "create")
    names = ["s%d" % (i % snapshots) for i in range(calls)]
    for name in names[:100]:  # warm-up
        dom.snapshotLookupByName(name)
    start, start_cpu, start_server = time.perf_counter(), time.process_time(), server_cpu()
    for name in names:
        dom.snapshotLookupByName(name)
    print("lookup_us", (time.perf_counter() - start) / calls * 1e6)
    print("client_cpu", time.process_time() - start_cpu)
    print("server_cpu", server_cpu() - start_server)
    conn.close()


def echo(size, calls, path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    packet = struct.pack(">I", size) + bytes(size - 4)

    def round_trip():
        s.sendall(packet)
        got = 0
        while got < size:
            chunk = s.recv(size - got)
            if not chunk:
                sys.exit("the floor server closed the connection")
            got += len(chunk)

    for _ in range(100):  # warm-up
        round_trip()
    start, start_cpu, start_server = time.perf_counter(), time.process_time(), server_cpu()
    for _ in range(calls):
        round_trip()
    print("echo_us", (time.perf_counter() - start) / calls * 1e6)
    print("client_cpu", time.process_time() - start_cpu)
    print("server_cpu", server_cpu() - start_server)
    s.close()


def workflow(n, tree, uri):
    conn = libvirt.open(uri)
    dom = conn.lookupByName("test")
    times = {}
    # Remote calls of the timed phases (getName is answered from the client's own object).
    calls = [0]

    cpu = [0.0]

    server = {}

    def phase(name, fn):
        start, start_cpu, start_server = time.perf_counter(), time.process_time(), server_cpu()
        value = fn()
        times[name] = time.perf_counter() - start
        cpu[0] += time.process_time() - start_cpu
        server[name] = server_cpu() - start_server
        return value

    def create():
        for i in range(n):
            dom.snapshotCreateXML("<domainsnapshot><name>s%d</name></domainsnapshot>" % i, 0)
            calls[0] += 1
            if tree and i % 4 == 3:
                dom.revertToSnapshot(dom.snapshotLookupByName("s%d" % (i // 2)), 0)
                calls[0] += 2

    def dump():
        snaps = dom.listAllSnapshots(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL)
        calls[0] += 1 + 2 * len(snaps)
        return [(s.getName(), s.getXMLDesc(libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE), s.isCurrent()) for s in snaps]

    def drop():
        # The test driver has no METADATA_ONLY; its plain delete only touches in-memory metadata.
        roots = dom.listAllSnapshots(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_ROOTS)
        calls[0] += 1 + len(roots)
        for root in roots:
            root.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN)

    def redefine(dumped):
        calls[0] += len(dumped)
        for name, xml, current in dumped:
            flags = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
            if current:
                flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
            dom.snapshotCreateXML(xml, flags)

    def walk(dumped):
        calls[0] += 2 * len(dumped)
        for name, _, _ in dumped:
            snap = dom.snapshotLookupByName(name)
            try:
                snap.getParent()
            except libvirt.libvirtError:
                pass

    def delete():
        roots = dom.listAllSnapshots(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_ROOTS)
        calls[0] += 1 + len(roots)
        for root in roots:
            root.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN)

    phase("create", create)
    expect(dom, n, "create")
    dumped = phase("dump", dump)
    if len(dumped) != n:
        sys.exit("dump listed %d snapshots, expected %d" % (len(dumped), n))
    phase("drop", drop)
    expect(dom, 0, "drop")
    phase("redefine", lambda: redefine(dumped))
    expect(dom, n, "redefine")
    phase("walk", lambda: walk(dumped))
    phase("delete", delete)
    expect(dom, 0, "delete")
    conn.close()
    for name, seconds in times.items():
        print(name, seconds)
    print("client_cpu", cpu[0])
    print("calls", calls[0])
    if SERVER_PID:
        for name, seconds in server.items():
            print("server_" + name, seconds)


if sys.argv[1] == "lookup":
    lookup(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
elif sys.argv[1] == "echo":
    echo(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
else:
    workflow(int(sys.argv[1]), sys.argv[2] == "tree", sys.argv[3] if len(sys.argv) > 3 else "test:///default")
