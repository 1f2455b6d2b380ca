// Package testnet holds test helpers about the machine's network. Tests
// that play several devices or gateways bind loopback source addresses
// other than 127.0.0.1 (127.0.0.2, 127.0.88.1, ...): Linux routes the whole
// of 127.0.0.0/8 to the loopback interface, but macOS and the BSDs have only
// 127.0.0.1 unless aliases are added. Those tests call
// RequireLoopbackAliases and are skipped, saying why, where the addresses
// do not exist; every other test still runs.
package testnet

import (
	"net"
	"os"
	"sync"
	"testing"
)

// probeAddr is a loopback address other than 127.0.0.1, far from the ones
// tests use.
const probeAddr = "127.0.0.254"

var (
	once      sync.Once
	available bool
)

// CanBind reports whether a UDP socket can be bound to addr (an IP address
// without port) on this machine.
func CanBind(addr string) bool {
	pc, err := net.ListenPacket("udp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

// EnvNoAliases, set to 1, makes LoopbackAliases report false, so that a
// Linux machine can check what runs on one without aliases (macOS).
const EnvNoAliases = "NUMBERGATE_TEST_NO_LOOPBACK_ALIASES"

// LoopbackAliases reports whether loopback addresses beyond 127.0.0.1 can
// be bound (checked once).
func LoopbackAliases() bool {
	once.Do(func() { available = os.Getenv(EnvNoAliases) != "1" && CanBind(probeAddr) })
	return available
}

// SkipMessage is what a skipped test says.
const SkipMessage = "skipped: this test binds 127.0.0.x source addresses other than 127.0.0.1, " +
	"which this system does not route to loopback (Linux does; on macOS add aliases, " +
	"e.g. `sudo ifconfig lo0 alias 127.0.0.2 up` for each address the test uses)"

// RequireLoopbackAliases skips t where loopback aliases do not exist.
func RequireLoopbackAliases(t testing.TB) {
	t.Helper()
	if !LoopbackAliases() {
		t.Skip(SkipMessage)
	}
}
