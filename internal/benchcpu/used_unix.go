//go:build unix

package benchcpu

import (
	"syscall"
	"time"
)

// used is the process's CPU time so far (false when it cannot be read).
func used() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
