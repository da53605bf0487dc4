//go:build linux

package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// A network namespace made by a test and joined to the root namespace by
// a veth pair, so that a host inside can be cut off (the root end's link
// down) and healed (up again). Only the pair's two addresses are used.

// netnsPrefix starts the name of every namespace these tests make; the
// rest is the test process's pid.
const netnsPrefix = "wpmpart-"

// netns is a namespace the test made and the veth pair into it.
type netns struct {
	name   string // the namespace
	rootIf string // the pair's end in the root namespace
	rootIP string // its address
	nsIP   string // the address of the end inside the namespace
}

// requireRootNet fails the test unless it can make namespaces: it runs
// as root and iproute2's ip is installed.
func requireRootNet(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("%s needs root: it makes network namespaces and veth pairs (ip netns add); run it as root, as .ci/run does", t.Name())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("%s needs iproute2's ip (apt-get install iproute2): %v", t.Name(), err)
	}
}

// ipRun runs ip with args and fails the test if it fails.
func ipRun(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
}

// newNetns makes a namespace and a veth pair into it, up, with addresses
// 10.231.N.1 (root end) and 10.231.N.2 (inside) on a /24 no interface
// uses yet; the test's cleanup removes both, on every path.
func newNetns(t *testing.T) *netns {
	t.Helper()
	sweepNetns()
	pid := os.Getpid()
	subnet := freeSubnet(t, pid)
	n := &netns{
		name:   fmt.Sprintf("%s%d", netnsPrefix, pid),
		rootIf: fmt.Sprintf("wpp%dr", pid),
		rootIP: fmt.Sprintf("10.231.%d.1", subnet),
		nsIP:   fmt.Sprintf("10.231.%d.2", subnet),
	}
	inner := fmt.Sprintf("wpp%dn", pid)
	t.Cleanup(func() { removeNetns(n.name, n.rootIf) })
	ipRun(t, "netns", "add", n.name)
	ipRun(t, "link", "add", n.rootIf, "type", "veth", "peer", "name", inner, "netns", n.name)
	ipRun(t, "addr", "add", n.rootIP+"/24", "dev", n.rootIf)
	ipRun(t, "link", "set", n.rootIf, "up")
	ipRun(t, "-n", n.name, "addr", "add", n.nsIP+"/24", "dev", inner)
	ipRun(t, "-n", n.name, "link", "set", inner, "up")
	ipRun(t, "-n", n.name, "link", "set", "lo", "up")
	return n
}

// exec is the command that runs its arguments inside the namespace.
func (n *netns) exec() []string { return []string{"ip", "netns", "exec", n.name} }

// cut takes the root end of the pair down: nothing passes either way.
func (n *netns) cut(t *testing.T) { t.Helper(); ipRun(t, "link", "set", n.rootIf, "down") }

// heal brings the root end up again.
func (n *netns) heal(t *testing.T) { t.Helper(); ipRun(t, "link", "set", n.rootIf, "up") }

// removeNetns deletes namespace name (and the pair end inside it) and the
// root end rootIf; what is gone already is no error.
func removeNetns(name, rootIf string) {
	_ = exec.Command("ip", "link", "del", rootIf).Run()
	_ = exec.Command("ip", "netns", "del", name).Run()
}

// sweepNetns removes what an earlier test process that died before its
// cleanup left behind: namespaces named after a pid that no longer runs.
func sweepNetns() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		pid, err := strconv.Atoi(strings.TrimPrefix(name, netnsPrefix))
		if !strings.HasPrefix(name, netnsPrefix) || err != nil || pid == os.Getpid() {
			continue
		}
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			removeNetns(name, fmt.Sprintf("wpp%dr", pid))
		}
	}
}

// freeSubnet returns N such that no interface has an address in
// 10.231.N.0/24, starting from one derived from pid.
func freeSubnet(t *testing.T, pid int) int {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for i := range 200 {
		subnet := 20 + (pid+i)%200
		_, block, _ := net.ParseCIDR(fmt.Sprintf("10.231.%d.0/24", subnet))
		used := false
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && block.Contains(ipn.IP) {
				used = true
			}
		}
		if !used {
			return subnet
		}
	}
	t.Fatal("no free 10.231.N.0/24 for the test's veth pair")
	return 0
}
