// Package benchcpu reports the CPU time a benchmark's process spends per
// operation (user plus system, every goroutine and the kernel's work for
// them), a figure less disturbed than ns/op when other work shares the
// machine.
package benchcpu

import "testing"

// Start reads the process's CPU time now; the returned func, called when
// the timed part is over, reports the CPU time since per b.N as
// "cpu-µs/op".
func Start(b *testing.B) (report func()) {
	start, ok := used()
	return func() {
		if end, _ := used(); ok && b.N > 0 {
			b.ReportMetric(float64((end-start).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
		}
	}
}
