package cgnat_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/numbergate/numbergate/internal/benchcpu"
	"github.com/numbergate/numbergate/internal/cgnat"
)

// BenchmarkIngest stores ALLOC records from 64 concurrent readers (as the
// syslog workers store them: one after another each, sharing the store's
// group commits) into a real SQLite store. One op is one durable record.
func BenchmarkIngest(b *testing.B) {
	const readers = 64
	st := openStore(b)
	g, err := cgnat.New(cgnat.Config{}, st, cgnat.Options{})
	if err != nil {
		b.Fatal(err)
	}
	texts := make([]string, readers)
	for r := range readers {
		var sb strings.Builder
		for i := r; i < b.N; i += readers {
			fmt.Fprintf(&sb, "2026-11-27T10:00:00Z ALLOC private=100.%d.%d.%d public=198.18.%d.%d ports=%d-%d\n",
				64+i>>16&63, i>>8&255, i&255, i>>14&255, i>>6&255, (i&63)*1000+1, (i&63)*1000+999)
		}
		texts[r] = sb.String()
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := benchcpu.Start(b)
	var wg sync.WaitGroup
	for _, text := range texts {
		wg.Go(func() {
			c, err := g.IngestReader(context.Background(), strings.NewReader(text), "bench")
			if err != nil || c.Malformed != 0 {
				b.Errorf("IngestReader = %+v, %v", c, err)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu()
}
