package cgnat

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestHelpListsEveryLabelValue keeps the metrics' help texts in step with
// the label values the ingester emits.
func TestHelpListsEveryLabelValue(t *testing.T) {
	m := NewMetrics(nil)
	for vec, values := range map[*prometheus.CounterVec][]string{
		m.Records: {ResultAlloc, ResultRelease, ResultUnmatched, ResultMalformed, ResultStoreError},
		m.Dropped: {DropUnknownSender, DropOverload, DropPanic},
	} {
		ch := make(chan *prometheus.Desc, 1)
		vec.Describe(ch)
		help := (<-ch).String()
		for _, v := range values {
			if !strings.Contains(help, v) {
				t.Errorf("help lacks %q: %s", v, help)
			}
		}
	}
}
