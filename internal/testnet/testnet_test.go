package testnet

import (
	"runtime"
	"testing"
)

func TestCanBind(t *testing.T) {
	if !CanBind("127.0.0.1") {
		t.Fatal("cannot bind 127.0.0.1")
	}
	// 192.0.2.1 (TEST-NET-1) is on no interface of a test machine: this is
	// what a missing loopback alias looks like.
	if CanBind("192.0.2.1") {
		t.Skip("192.0.2.1 is assigned to an interface here")
	}
	if runtime.GOOS == "linux" && !LoopbackAliases() {
		t.Error("Linux routes 127.0.0.0/8 to loopback, yet 127.0.0.254 cannot be bound")
	}
}
