//go:build !unix

package benchcpu

import "time"

// used cannot read the process's CPU time here: nothing is reported.
func used() (time.Duration, bool) { return 0, false }
