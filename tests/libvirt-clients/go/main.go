// A go-libvirt client for the libvirt interop tests (issue 14): it speaks libvirt's RPC protocol
// through Debian's go-libvirt over one unix socket, creates a small snapshot hierarchy on domain
// "test", lists domains and snapshots, reverts to one and prints a deterministic transcript.
//
// Usage: libvirt-go-client SOCKET URI   (URI is the name sent in CONNECT_OPEN, e.g. mock:///dir)
// Exit status 0 when every call succeeded or failed exactly as expected; 1 otherwise.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
)

// Lines of the transcript go to stdout; a failure stops the run with exit status 1.
func fail(what string, err error) {
	fmt.Printf("FAIL %s: %v\n", what, err)
	os.Exit(1)
}

func uuid(u libvirt.UUID) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// States as libvirt numbers them (libvirt-domain.h): printed by name so the transcript reads.
var states = map[int32]string{0: "nostate", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown",
	5: "shutoff", 6: "crashed", 7: "pmsuspended"}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: libvirt-go-client SOCKET URI")
		os.Exit(2)
	}
	conn, err := net.DialTimeout("unix", os.Args[1], 10*time.Second)
	if err != nil {
		fail("dial", err)
	}
	l := libvirt.New(conn)
	if err := l.ConnectToURI(libvirt.ConnectURI(os.Args[2])); err != nil {
		fail("connect", err)
	}

	doms, ret, err := l.ConnectListAllDomains(1, 0)
	if err != nil {
		fail("ConnectListAllDomains", err)
	}
	fmt.Printf("domains: %d\n", ret)
	for _, d := range doms {
		fmt.Printf("domain %s uuid %s id %d\n", d.Name, uuid(d.UUID), d.ID)
	}

	dom, err := l.DomainLookupByName("test")
	if err != nil {
		fail("DomainLookupByName test", err)
	}
	for _, name := range []string{"g1", "g2", "g3"} {
		xml := fmt.Sprintf("<domainsnapshot><name>%s</name><description>go %s</description></domainsnapshot>", name, name)
		snap, err := l.DomainSnapshotCreateXML(dom, xml, 0)
		if err != nil {
			fail("DomainSnapshotCreateXML "+name, err)
		}
		fmt.Printf("created %s on %s\n", snap.Name, snap.Dom.Name)
	}

	snaps, n, err := l.DomainListAllSnapshots(dom, 1, 0)
	if err != nil {
		fail("DomainListAllSnapshots", err)
	}
	// The order of DomainListAllSnapshots is the driver's; sort so the transcript is stable.
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].Name < snaps[j].Name })
	fmt.Printf("snapshots: %d\n", n)
	for _, s := range snaps {
		parent := "-"
		if p, err := l.DomainSnapshotGetParent(s, 0); err == nil {
			parent = p.Name
		} else {
			var lerr libvirt.Error
			// 72 = VIR_ERR_NO_DOMAIN_SNAPSHOT: "no parent", what virsh relies on too.
			if !errors.As(err, &lerr) || lerr.Code != 72 {
				fail("DomainSnapshotGetParent "+s.Name, err)
			}
		}
		cur, err := l.DomainSnapshotIsCurrent(s, 0)
		if err != nil {
			fail("DomainSnapshotIsCurrent "+s.Name, err)
		}
		fmt.Printf("snapshot %s parent %s current %d\n", s.Name, parent, cur)
	}

	g1, err := l.DomainSnapshotLookupByName(dom, "g1", 0)
	if err != nil {
		fail("DomainSnapshotLookupByName g1", err)
	}
	if err := l.DomainRevertToSnapshot(g1, 0); err != nil {
		fail("DomainRevertToSnapshot g1", err)
	}
	fmt.Println("reverted to g1")
	cur, err := l.DomainSnapshotCurrent(dom, 0)
	if err != nil {
		fail("DomainSnapshotCurrent", err)
	}
	fmt.Printf("current %s\n", cur.Name)
	state, reason, err := l.DomainGetState(dom, 0)
	if err != nil {
		fail("DomainGetState", err)
	}
	fmt.Printf("state %s reason %d\n", states[state], reason)
	// libvirt gives the domain a new id whenever a revert (re)starts it.
	again, err := l.DomainLookupByName("test")
	if err != nil {
		fail("DomainLookupByName test", err)
	}
	fmt.Printf("domain %s id %d\n", again.Name, again.ID)

	if _, err := l.DomainSnapshotLookupByName(dom, "nosuch", 0); err == nil {
		fail("DomainSnapshotLookupByName nosuch", errors.New("succeeded"))
	} else {
		var lerr libvirt.Error
		errors.As(err, &lerr)
		fmt.Printf("lookup nosuch: code %d: %s\n", lerr.Code, err)
	}

	if err := l.Disconnect(); err != nil {
		fail("Disconnect", err)
	}
	fmt.Println("done")
}
