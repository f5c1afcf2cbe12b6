// Command vsphere-sim starts govmomi's vSphere simulator (Debian's
// golang-github-vmware-govmomi-dev, GOPATH mode) for virtplug's vsphere plugin tests.
//
// It listens on the loopback interface only, prints the SDK URL on stdout, and runs until
// SIGINT/SIGTERM or until its standard input is closed (so a test harness that dies does not
// leave it behind). It must never listen on a non-loopback address.
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator"
)

func main() {
	model := flag.String("model", "vpx", "inventory model: vpx (vCenter) or esx (standalone ESXi)")
	listen := flag.String("l", "127.0.0.1:0", "listen address (loopback only; port 0 picks a free port)")
	creds := flag.String("u", "root:secret", "credentials user:pass required at Login")
	useTLS := flag.Bool("tls", false, "serve HTTPS with Go's built-in test certificate")
	watchStdin := flag.Bool("stdin", false, "exit when standard input reaches EOF")
	flag.Parse()

	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		fail("bad listen address %q: %v", *listen, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		fail("refusing to listen on %q: loopback addresses only", host)
	}
	user, pass, ok := strings.Cut(*creds, ":")
	if !ok || user == "" || pass == "" {
		fail("-u wants user:pass")
	}

	var m *simulator.Model
	switch *model {
	case "vpx":
		m = simulator.VPX()
	case "esx":
		m = simulator.ESX()
	default:
		fail("unknown model %q (want vpx or esx)", *model)
	}
	if err := m.Create(); err != nil {
		fail("creating the model: %v", err)
	}
	defer m.Remove()

	m.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(user, pass)}
	m.Service.RegisterEndpoints = true
	if *useTLS {
		m.Service.TLS = new(tls.Config)
	}
	s := m.Service.NewServer()
	defer s.Close()

	sdk := *s.URL
	sdk.User = nil
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "GOVC_URL=%s\n", s.URL.String())
	fmt.Fprintf(out, "SDK=%s\n", sdk.String())
	out.Flush()

	done := make(chan os.Signal, 1)
	signal.Notify(done, syscall.SIGINT, syscall.SIGTERM)
	if *watchStdin {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			done <- syscall.SIGTERM
		}()
	}
	<-done
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "vsphere-sim: "+format+"\n", args...)
	os.Exit(2)
}
