#!/usr/bin/python3
"""The errors of the snapshot and domain APIs, as a libvirt client sees them: for each call,
`label: ok` or `label: CODE DOMAIN MESSAGE` (libvirt's error code, its error domain, the first
line of the message). Run against libvirtd's test driver and against virtplugd's mock host by
the interop tests, which compare the two transcripts line by line. Usage: errors.py URI"""
import sys

import libvirt

libvirt.registerErrorHandler(lambda *_: None, None)
R = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE


def main(uri):
    conn = libvirt.open(uri)
    dom = conn.lookupByName("test")

    def call(label, f):
        try:
            f()
            print(f"{label}: ok")
        except libvirt.libvirtError as e:
            message = (e.get_error_message() or "").split("\n")[0]
            print(f"{label}: {e.get_error_code()} {e.get_error_domain()} {message}")

    def snap(xml, flags=0):
        return lambda: dom.snapshotCreateXML(xml, flags)

    s1 = dom.snapshotCreateXML("<domainsnapshot><name>s1</name></domainsnapshot>")
    call("CURRENT without REDEFINE", snap("<domainsnapshot/>", libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT))
    call("REDEFINE with NO_METADATA", snap("<domainsnapshot/>", R | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA))
    call("revert RUNNING|PAUSED", lambda: dom.revertToSnapshot(s1, 3))
    call("delete CHILDREN|CHILDREN_ONLY", lambda: s1.delete(5))
    call("online to offline", snap("<domainsnapshot><name>s1</name><state>shutoff</state>"
                                   "<creationTime>1</creationTime><memory snapshot='no'/></domainsnapshot>", R))
    call("redefine without a name", snap("<domainsnapshot/>", R))
    call("redefine without creationTime", snap("<domainsnapshot><name>r</name><state>running</state></domainsnapshot>", R))
    call("redefine without state", snap("<domainsnapshot><name>r</name><creationTime>1</creationTime></domainsnapshot>", R))
    call("own parent", snap("<domainsnapshot><name>s1</name><state>running</state><creationTime>1</creationTime>"
                            "<parent><name>s1</name></parent></domainsnapshot>", R))
    call("unknown parent", snap("<domainsnapshot><name>r</name><state>running</state><creationTime>1</creationTime>"
                                "<parent><name>zz</name></parent></domainsnapshot>", R))
    call("domain by uuid only", snap("<domainsnapshot><name>r2</name><state>running</state><creationTime>1</creationTime>"
                                     "<domain><uuid>11111111-2222-3333-4444-555555555555</uuid></domain></domainsnapshot>", R))
    call("relative memory file", snap("<domainsnapshot><memory file='rel'/></domainsnapshot>"))
    call("manual memory", snap("<domainsnapshot><memory snapshot='manual'/></domainsnapshot>"))
    call("unknown memory mode", snap("<domainsnapshot><memory snapshot='bogus'/></domainsnapshot>"))
    call("internal memory with a file", snap("<domainsnapshot><memory snapshot='internal' file='/m'/></domainsnapshot>"))
    call("external memory without a file", snap("<domainsnapshot><memory snapshot='external'/></domainsnapshot>"))
    call("disk without a name", snap("<domainsnapshot><disks><disk/></disks></domainsnapshot>"))
    call("relative disk path", snap("<domainsnapshot><disks><disk name='vda'><source file='x'/></disk></disks></domainsnapshot>"))
    call("unknown disk mode", snap("<domainsnapshot><disks><disk name='vda' snapshot='bogus'/></disks></domainsnapshot>"))
    call("disk twice", snap("<domainsnapshot><disks><disk name='vda'/><disk name='vda'/></disks></domainsnapshot>"))
    call("unknown disk", snap("<domainsnapshot><disks><disk name='vdz'/></disks></domainsnapshot>"))
    call("unknown state", snap("<domainsnapshot><name>r</name><state>bogus</state><creationTime>1</creationTime></domainsnapshot>", R))
    call("wrong root", snap("<domain/>"))
    call("malformed", snap("<domainsnapshot>\n  <name>x</name>\n"))
    call("empty", snap(""))
    call("name taken", snap("<domainsnapshot><name>s1</name></domainsnapshot>"))
    call("unknown snapshot", lambda: dom.snapshotLookupByName("zz"))
    call("parent of a root", lambda: s1.getParent())
    call("define without a name", lambda: conn.defineXML("<domain type='test'></domain>"))
    call("define malformed", lambda: conn.defineXML("<domain type='test'>\n"))
    call("define wrong root", lambda: conn.defineXML("<foo/>"))
    call("define a taken uuid", lambda: conn.defineXML(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
                                                       .replace("<name>test</name>", "<name>other</name>")))
    other = (dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).replace("<name>test</name>", "<name>d2</name>")
             .replace("6695eb01-f6a4-8304-79aa-97f2502e193f", "6695eb01-f6a4-8304-79aa-97f2502e1999"))
    memory = other[other.index("<memory"):other.index("</memory>") + len("</memory>")]
    call("define a taken name", lambda: conn.defineXML(other.replace("<name>d2</name>", "<name>test</name>")))
    call("define without a type", lambda: conn.defineXML(other.replace("<domain type='test'>", "<domain>")))
    call("define an unknown type", lambda: conn.defineXML(other.replace("type='test'>", "type='bogus'>", 1)))
    call("define a name with a slash", lambda: conn.defineXML(other.replace("<name>d2</name>", "<name>a/b</name>")))
    call("define a malformed uuid", lambda: conn.defineXML(other.replace("6695eb01-f6a4-8304-79aa-97f2502e1999", "zz")))
    call("define a title with a newline", lambda: conn.defineXML(other.replace("</name>", "</name><title>a\nb</title>", 1)))
    call("define without memory", lambda: conn.defineXML(other.replace(memory, "")))
    call("define an unreadable memory", lambda: conn.defineXML(other.replace(">8388608</memory>", ">abc</memory>")))
    os_part = other[other.index("<os>"):other.index("</os>") + len("</os>")]
    call("define without an os type", lambda: conn.defineXML(other.replace(os_part, "")))
    call("define without an os type, nor memory", lambda: conn.defineXML(other.replace(os_part, "").replace(memory, "")))
    call("define an unknown os type", lambda: conn.defineXML(other.replace(">hvm</type>", ">HVM</type>")))
    call("define an exe without init", lambda: conn.defineXML(other.replace(">hvm</type>", ">exe</type>")))
    call("define zero vcpus", lambda: conn.defineXML(other.replace(">2</vcpu>", ">0</vcpu>")))
    call("define unreadable vcpus", lambda: conn.defineXML(other.replace(">2</vcpu>", ">2 </vcpu>")))
    call("define a current vcpu count above the maximum",
         lambda: conn.defineXML(other.replace("<vcpu placement='static'>", "<vcpu placement='static' current='3'>")))
    call("destroy", dom.destroy)
    call("destroy again", dom.destroy)
    call("undefine with a snapshot", dom.undefine)
    call("suspend shut off", dom.suspend)
    call("resume shut off", dom.resume)
    call("start", dom.create)
    call("start again", dom.create)
    call("resume running", dom.resume)
    call("suspend", dom.suspend)
    call("suspend again", dom.suspend)
    call("shutdown paused", dom.shutdown)
    call("shutdown shut off", dom.shutdown)
    # A lookup of an unknown domain: libvirt's bare "Domain not found", no detail.
    call("lookup unknown name", lambda: conn.lookupByName("nosuch"))
    call("lookup unknown uuid", lambda: conn.lookupByUUIDString("6695eb01-f6a4-8304-79aa-97f2502e1900"))
    # A running domain undefined is transient; once stopped it is gone, and its stop succeeded.
    q = conn.defineXML("<domain type='test'><name>q</name><memory>1024</memory><os><type>hvm</type></os></domain>")
    q.create()
    call("undefine running", q.undefine)
    call("destroy transient", q.destroy)
    call("lookup stopped transient", lambda: conn.lookupByName("q"))


if __name__ == "__main__":
    main(sys.argv[1])
