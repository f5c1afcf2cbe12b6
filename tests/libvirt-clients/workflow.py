#!/usr/bin/python3
"""The founding workflow through python3-libvirt, unchanged except for its URI (issue 14).

Builds a snapshot hierarchy on domain "test", dumps every snapshot's XML (SECURE) and notes the
current one, drops all the metadata (METADATA_ONLY, children first), redefines them parents first
(REDEFINE, and REDEFINE|CURRENT for the current one), walks the result with every snapshot query
python3-libvirt has and compares it with what was dumped, then reverts to one snapshot and deletes
a root with CHILDREN. Prints a deterministic transcript (names and relations, never times) and
exits 1 on the first mismatch.

Usage: workflow.py URI [--plain-delete]
  --plain-delete: drop the metadata with a plain delete. Only for libvirt's own test driver, which
  refuses METADATA_ONLY ("unsupported flags (0x2) in function testDomainSnapshotDelete"); its
  snapshots are metadata only, so a plain delete drops exactly the same thing there.
"""
import sys

import libvirt

URI = sys.argv[1]
PLAIN_DELETE = sys.argv[2:] == ["--plain-delete"]


def out(line):
    print(line, flush=True)


def mismatch(what, expected, actual):
    out("MISMATCH %s: expected %r, got %r" % (what, expected, actual))
    sys.exit(1)


def check(what, expected, actual):
    if expected != actual:
        mismatch(what, expected, actual)


def parent_of(snap):
    """The parent's name, or None for a root: exactly VIR_ERR_NO_DOMAIN_SNAPSHOT means no parent."""
    try:
        return snap.getParent().getName()
    except libvirt.libvirtError as e:
        if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
            raise
        return None


def create(dom, name, description):
    xml = "<domainsnapshot><name>%s</name><description>%s</description></domainsnapshot>" % (name, description)
    snap = dom.snapshotCreateXML(xml, 0)
    check("created name", name, snap.getName())
    out("create %s parent=%s" % (name, parent_of(snap)))


def names(snaps):
    return sorted(s.getName() for s in snaps)


def main():
    # The library's default handler prints every error to stderr; the transcript says what matters.
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    conn = libvirt.open(URI)
    dom = conn.lookupByName("test")
    out("domain %s %s active=%d" % (dom.name(), dom.UUIDString(), dom.isActive()))
    check("snapshots before", 0, dom.snapshotNum())

    # 1. The hierarchy: r1 -> a1 -> {a2, b1 -> b2}; r2 -> c1; current b1.
    create(dom, "t0", "scaffold")
    create(dom, "r1", "root one")
    create(dom, "a1", "a one")
    create(dom, "a2", "a two")
    dom.revertToSnapshot(dom.snapshotLookupByName("a1"), 0)
    create(dom, "b1", "b one")
    create(dom, "b2", "b two")
    dom.revertToSnapshot(dom.snapshotLookupByName("t0"), 0)
    create(dom, "r2", "root two")
    create(dom, "c1", "c one")
    dom.snapshotLookupByName("t0").delete(0)
    out("delete t0 (children re-parented)")
    dom.revertToSnapshot(dom.snapshotLookupByName("b1"), 0)
    out("revert b1")
    check("roots", ["r1", "r2"], names(dom.listAllSnapshots(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_ROOTS)))

    # 2. Dump every snapshot, parents first, with the current one noted.
    dumped = []
    for snap in dom.listAllSnapshots(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL):
        entry = (snap.getName(), parent_of(snap), snap.getXMLDesc(libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE),
                 bool(snap.isCurrent()))
        dumped.append(entry)
    seen = set()
    for name, parent, _, _ in dumped:
        if parent is not None and parent not in seen:
            mismatch("topological order", "%s before %s" % (parent, name), "after")
        seen.add(name)
    current = [name for name, _, _, cur in dumped if cur]
    check("current", ["b1"], current)
    out("dump %d snapshots, current %s" % (len(dumped), current[0]))

    # 3. Drop the metadata, children first.
    flags = 0 if PLAIN_DELETE else libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY
    for name, _, _, _ in reversed(dumped):
        dom.snapshotLookupByName(name).delete(flags)
    check("snapshots after drop", 0, dom.snapshotNum())
    check("list after drop", [], dom.listAllSnapshots())
    check("has current after drop", 0, dom.hasCurrentSnapshot())
    out("drop %d snapshots: none left, no current" % len(dumped))

    # 4. Redefine, parents first, the current one with CURRENT.
    for name, _, xml, cur in dumped:
        flags = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
        if cur:
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
        snap = dom.snapshotCreateXML(xml, flags)
        check("redefined name", name, snap.getName())
    out("redefine %d snapshots" % len(dumped))

    # 5. Walk and compare with the dump.
    by_name = {name: (parent, xml, cur) for name, parent, xml, cur in dumped}
    listed = dom.listAllSnapshots()
    check("listAllSnapshots", sorted(by_name), names(listed))
    check("snapshotNum", len(dumped), dom.snapshotNum())
    check("snapshotListNames", sorted(by_name), sorted(dom.snapshotListNames()))
    check("hasCurrentSnapshot", 1, dom.hasCurrentSnapshot())
    check("snapshotCurrent", "b1", dom.snapshotCurrent().getName())
    for snap in sorted(listed, key=lambda s: s.getName()):
        name = snap.getName()
        parent, xml, cur = by_name[name]
        check("parent of " + name, parent, parent_of(snap))
        check("isCurrent of " + name, cur, bool(snap.isCurrent()))
        check("hasMetadata of " + name, 1, snap.hasMetadata())
        check("XML of " + name, xml, snap.getXMLDesc(libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE))
        children = names(snap.listAllChildren())
        check("children of " + name, sorted(n for n, (p, _, _) in by_name.items() if p == name), children)
        check("numChildren of " + name, len(children), snap.numChildren())
        check("listChildrenNames of " + name, children, sorted(snap.listChildrenNames()))
        descendants = names(snap.listAllChildren(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_DESCENDANTS))
        check("numChildren(DESCENDANTS) of " + name, len(descendants),
              snap.numChildren(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_DESCENDANTS))
        out("walk %s parent=%s current=%d children=%s descendants=%s" % (
            name, parent, cur, ",".join(children) or "-", ",".join(descendants) or "-"))

    # 6. Revert to one, delete a root with its children.
    dom.revertToSnapshot(dom.snapshotLookupByName("a2"), 0)
    check("current after revert", "a2", dom.snapshotCurrent().getName())
    state, reason = dom.state()
    out("revert a2: current a2, state %d reason %d" % (state, reason))
    dom.snapshotLookupByName("r1").delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN)
    left = names(dom.listAllSnapshots())
    check("left after delete", ["c1", "r2"], left)
    out("delete r1 with children: left %s, has current %d" % (",".join(left), dom.hasCurrentSnapshot()))
    try:
        dom.snapshotLookupByName("a1")
        mismatch("lookup a1 after delete", "VIR_ERR_NO_DOMAIN_SNAPSHOT", "found")
    except libvirt.libvirtError as e:
        out("lookup a1: code %d: %s" % (e.get_error_code(), e.get_error_message()))
    conn.close()
    out("ok")


if __name__ == "__main__":
    main()
