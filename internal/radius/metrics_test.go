package radius

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPacketsHelpListsEveryResult keeps the metric's help text in step with
// the label values the server emits (Results: every Outcome* and Drop*).
func TestPacketsHelpListsEveryResult(t *testing.T) {
	ch := make(chan *prometheus.Desc, 1)
	NewMetrics(nil).Packets.Describe(ch)
	help := (<-ch).String()
	for _, r := range Results {
		if !strings.Contains(help, r) {
			t.Errorf("numbergate_radius_packets_total help lacks %q: %s", r, help)
		}
	}
}
