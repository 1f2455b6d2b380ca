package cgnat

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/numbergate/numbergate/internal/callctx"
	"github.com/numbergate/numbergate/internal/nv"
)

// Config is the CGNAT log ingestion's configuration (network.cgnat in the
// YAML config).
type Config struct {
	// SyslogListen is the UDP syslog address ("" for none), e.g.
	// "0.0.0.0:5514".
	SyslogListen string
	// Files are allocation logs ingested by IngestFiles.
	Files []string
	// Senders are the only source addresses whose syslog datagrams are
	// accepted (the NATs); required to serve syslog, since syslog over UDP
	// has no authentication.
	Senders []netip.Prefix
}

// DefaultLogEvery is how often malformed records are logged per sender (a
// file, or a syslog source address): the first at once, then one line with
// the count per interval.
const DefaultLogEvery = 10 * time.Second

// Options are the ingester's injected dependencies.
type Options struct {
	Logger *slog.Logger
	// Metrics are the collectors to count in (unregistered ones when nil).
	Metrics *Metrics
	// StoreTimeout bounds each store call (5 s when zero).
	StoreTimeout time.Duration
	// LogEvery is the malformed-record log interval per sender
	// (DefaultLogEvery when zero).
	LogEvery time.Duration
	// Now is the clock of the log limiter (time.Now when nil).
	Now func() time.Time
	// Workers is the number of goroutines storing syslog records (64 when
	// zero) and QueueSize how many records may wait for them (8192 when
	// zero). Records are spread by private address, so the records of one
	// subscriber are stored in arrival order; many in flight at once share
	// the store's group commits.
	Workers   int
	QueueSize int
}

// Counts summarises an ingestion.
type Counts struct {
	Applied   int
	Malformed int
	Unmatched int
}

// Ingester records port-block allocations into the store.
type Ingester struct {
	cfg   Config
	store nv.NetworkSessionStore
	log   *slog.Logger
	opts  Options
	addr  atomic.Pointer[net.Addr]

	queued atomic.Int64 // syslog records waiting for a worker

	metrics *Metrics

	logMu     sync.Mutex
	malformed map[string]*malformedLog // by sender
}

// malformedLog is the log limiter's state for one sender.
type malformedLog struct {
	last       time.Time // of the last log line
	suppressed int       // malformed records since, not logged
	lastErr    string
}

// maxLogSenders bounds the limiter's memory; past it, the oldest state is
// forgotten (Senders keeps the syslog ones few).
const maxLogSenders = 1024

// New returns an ingester for cfg.
func New(cfg Config, store nv.NetworkSessionStore, opts Options) (*Ingester, error) {
	if store == nil {
		return nil, errors.New("cgnat: nil store")
	}
	for i, p := range cfg.Senders {
		if !p.IsValid() {
			return nil, fmt.Errorf("cgnat: sender %d: invalid prefix", i)
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SyslogListen != "" && len(cfg.Senders) == 0 {
		return nil, errors.New("cgnat: syslog_listen needs senders (the NATs' addresses): syslog over UDP has no authentication")
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = 5 * time.Second
	}
	if opts.LogEvery <= 0 {
		opts.LogEvery = DefaultLogEvery
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Workers <= 0 {
		opts.Workers = 64
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 8192
	}
	return &Ingester{cfg: cfg, store: store, log: opts.Logger.With("component", "cgnat"), opts: opts,
		metrics: opts.Metrics, malformed: map[string]*malformedLog{}}, nil
}

// Apply stores one record, its store calls bounded by StoreTimeout.
// unmatched is true for a RELEASE that found no open allocation.
func (g *Ingester) Apply(ctx context.Context, r Record) (unmatched bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, g.opts.StoreTimeout)
	defer cancel()
	return g.apply(ctx, r)
}

// applyWith is Apply for a goroutine storing records one after another:
// its store calls are bounded by calls, which reuses one context and timer
// while none expires instead of a context.WithTimeout per record (about
// 3 % of the server's CPU under RADIUS load, where the same was done).
func (g *Ingester) applyWith(calls *callctx.Deadline, r Record) (unmatched bool, err error) {
	defer calls.Stop() // also if apply panics: Start and Stop pair up
	return g.apply(calls.Start(), r)
}

// apply stores one record, its store calls bounded by ctx.
func (g *Ingester) apply(ctx context.Context, r Record) (unmatched bool, err error) {
	switch r.Op {
	case Alloc:
		err = g.store.AllocatePortBlock(ctx, nv.PortBlock{
			Private: r.Private, Public: r.Public, FirstPort: r.FirstPort, LastPort: r.LastPort, Start: r.Time,
		})
	case Release:
		var ok bool
		ok, err = g.store.ReleasePortBlock(ctx, r.Private, r.Public, r.FirstPort, r.LastPort, r.Time)
		unmatched = err == nil && !ok
	default:
		return false, fmt.Errorf("cgnat: unknown op %d", r.Op)
	}
	if err != nil {
		g.metrics.Records.WithLabelValues(ResultStoreError).Inc()
		return false, fmt.Errorf("cgnat: %s: %w", r.Op, callctx.Explain(ctx, err))
	}
	if unmatched {
		g.metrics.Records.WithLabelValues(ResultUnmatched).Inc()
		g.log.Debug("release without open allocation", "private", r.Private, "public", r.Public, "first", r.FirstPort, "last", r.LastPort)
		return true, nil
	}
	op := ResultAlloc
	if r.Op == Release {
		op = ResultRelease
	}
	g.metrics.Records.WithLabelValues(op).Inc()
	return false, nil
}

// logMalformed logs a malformed record from sender: the first at once, then
// at most one line per LogEvery with the number skipped since.
func (g *Ingester) logMalformed(sender, where string, err error) {
	now := g.opts.Now()
	g.logMu.Lock()
	st := g.malformed[sender]
	if st == nil {
		if len(g.malformed) >= maxLogSenders {
			clear(g.malformed)
		}
		st = &malformedLog{}
		g.malformed[sender] = st
	}
	st.suppressed++
	st.lastErr = err.Error()
	var n int
	if st.last.IsZero() || now.Sub(st.last) >= g.opts.LogEvery {
		n, st.suppressed, st.last = st.suppressed, 0, now
	}
	g.logMu.Unlock()
	if n > 0 {
		g.log.Warn("malformed cgnat records skipped", "sender", sender, "where", where, "count", n, "err", err)
	}
}

// flushMalformed logs the malformed records not yet logged, per sender.
func (g *Ingester) flushMalformed() {
	g.logMu.Lock()
	type pending struct {
		sender, err string
		n           int
	}
	var ps []pending
	for s, st := range g.malformed {
		if st.suppressed > 0 {
			ps = append(ps, pending{s, st.lastErr, st.suppressed})
			st.suppressed = 0
		}
	}
	g.logMu.Unlock()
	for _, p := range ps {
		g.log.Warn("malformed cgnat records skipped", "sender", p.sender, "count", p.n, "err", p.err)
	}
}

// QueueDepth is how many syslog records wait for a store worker now.
func (g *Ingester) QueueDepth() int { return int(g.queued.Load()) }

// parse parses one line; a malformed one is counted and logged. ok is
// false for it and for a blank line.
func (g *Ingester) parse(b []byte, sender, where string, c *Counts) (r Record, ok bool) {
	if len(bytes.TrimSpace(b)) == 0 {
		return Record{}, false
	}
	r, err := ParseLine(b)
	if err != nil {
		c.Malformed++
		g.metrics.Records.WithLabelValues(ResultMalformed).Inc()
		g.logMalformed(sender, where, err)
		return Record{}, false
	}
	return r, true
}

// line parses and applies one line, counting it in c.
func (g *Ingester) line(calls *callctx.Deadline, b []byte, sender, where string, c *Counts) error {
	r, ok := g.parse(b, sender, where, c)
	if !ok {
		return nil
	}
	unmatched, err := g.applyWith(calls, r)
	if err != nil {
		return err
	}
	if unmatched {
		c.Unmatched++
	} else {
		c.Applied++
	}
	return nil
}

// IngestReader ingests every line of rd. A store error stops it.
func (g *Ingester) IngestReader(ctx context.Context, rd io.Reader, name string) (Counts, error) {
	var c Counts
	calls := callctx.New(ctx, g.opts.StoreTimeout)
	defer calls.Close()
	br := bufio.NewReaderSize(rd, 64*1024)
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return c, err
		}
		b, err := readLine(br)
		if len(b) > 0 {
			if lerr := g.line(calls, b, name, fmt.Sprintf("%s:%d", name, n), &c); lerr != nil {
				return c, lerr
			}
		}
		if err == io.EOF {
			return c, nil
		}
		if err != nil {
			return c, fmt.Errorf("cgnat: read %s: %w", name, err)
		}
	}
}

// readLine reads one line of any length, returning at most MaxLineLen+1
// bytes of it (longer lines are then rejected by ParseLine).
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(out) <= MaxLineLen {
			out = append(out, frag[:min(len(frag), MaxLineLen+1-len(out))]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return out, err
	}
}

// IngestFile ingests an allocation log file from its start.
func (g *Ingester) IngestFile(ctx context.Context, path string) (Counts, error) {
	f, err := os.Open(path)
	if err != nil {
		return Counts{}, fmt.Errorf("cgnat: %w", err)
	}
	defer f.Close()
	c, err := g.IngestReader(ctx, f, path)
	g.flushMalformed()
	g.log.Info("cgnat log ingested", "file", path, "applied", c.Applied, "malformed", c.Malformed, "unmatched", c.Unmatched)
	return c, err
}

// IngestFiles ingests every configured file, in order.
func (g *Ingester) IngestFiles(ctx context.Context) (Counts, error) {
	var total Counts
	for _, p := range g.cfg.Files {
		c, err := g.IngestFile(ctx, p)
		total.Applied += c.Applied
		total.Malformed += c.Malformed
		total.Unmatched += c.Unmatched
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Addr returns the syslog listener's address (nil before it serves).
func (g *Ingester) Addr() net.Addr {
	if a := g.addr.Load(); a != nil {
		return *a
	}
	return nil
}

// Serve receives syslog datagrams (RFC 5426) from pc until ctx is
// cancelled, then stores the records already received and returns nil. The
// receiving goroutine only checks the sender and parses; records are stored
// by Options.Workers goroutines, spread by private address so that an ALLOC
// is stored before the RELEASE of the same subscriber that follows it. It
// does not close pc.
func (g *Ingester) Serve(ctx context.Context, pc net.PacketConn) error {
	if len(g.cfg.Senders) == 0 {
		return errors.New("cgnat: syslog needs senders (the NATs' addresses): syslog over UDP has no authentication")
	}
	la := pc.LocalAddr()
	g.addr.Store(&la)
	// A burst (a gateway's Accounting-On and the Starts of all its
	// subscribers) must not overflow the socket while the store commits:
	// ask for a large receive buffer (the kernel caps it at rmem_max).
	if u, ok := pc.(interface{ SetReadBuffer(int) error }); ok {
		_ = u.SetReadBuffer(socketBuffer)
	}
	defer g.flushMalformed()
	// Records in hand when ctx ends are still stored.
	storeCtx := context.WithoutCancel(ctx)
	per := max(g.opts.QueueSize/g.opts.Workers, 1)
	shards := make([]chan Record, g.opts.Workers)
	var wg sync.WaitGroup
	for i := range shards {
		shards[i] = make(chan Record, per)
		wg.Go(func() {
			calls := callctx.New(storeCtx, g.opts.StoreTimeout)
			defer calls.Close()
			for r := range shards[i] {
				g.queued.Add(-1)
				g.store1(calls, r)
			}
		})
	}
	defer func() {
		for _, ch := range shards {
			close(ch)
		}
		wg.Wait()
	}()
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 64*1024)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			g.log.Warn("cgnat syslog read failed", "err", err)
			continue
		}
		g.datagram(buf[:n], from, shards)
	}
}

// store1 stores one syslog record (a worker's job).
func (g *Ingester) store1(calls *callctx.Deadline, r Record) {
	defer func() {
		if p := recover(); p != nil {
			g.metrics.Dropped.WithLabelValues(DropPanic).Inc()
			g.log.Error("panic storing cgnat record", "panic", fmt.Sprint(p))
		}
	}()
	if _, err := g.applyWith(calls, r); err != nil {
		g.log.Warn("cgnat record not stored", "err", err)
	}
}

// datagram checks the sender, parses the datagram's lines and queues the
// records to the store workers.
func (g *Ingester) datagram(b []byte, from net.Addr, shards []chan Record) {
	defer func() {
		if r := recover(); r != nil {
			g.metrics.Dropped.WithLabelValues(DropPanic).Inc()
			g.log.Error("panic handling cgnat datagram", "panic", fmt.Sprint(r))
		}
	}()
	ap, _ := netip.ParseAddrPort(from.String())
	if u, ok := from.(*net.UDPAddr); ok {
		ap = u.AddrPort()
	}
	a := ap.Addr().Unmap().WithZone("")
	allowed := false
	for _, p := range g.cfg.Senders {
		if p.Contains(a) {
			allowed = true
			break
		}
	}
	if !allowed {
		g.metrics.Dropped.WithLabelValues(DropUnknownSender).Inc()
		g.log.Debug("cgnat syslog from unknown sender dropped", "from", from.String())
		return
	}
	var c Counts
	for l := range bytes.SplitSeq(b, []byte("\n")) {
		r, ok := g.parse(l, "syslog "+a.String(), "syslog "+from.String(), &c)
		if !ok {
			continue
		}
		k := r.Private.As16()
		h := fnv.New32a()
		h.Write(k[:])
		shard := shards[h.Sum32()%uint32(len(shards))]
		g.queued.Add(1)
		select {
		case shard <- r:
		default:
			g.queued.Add(-1)
			g.metrics.Dropped.WithLabelValues(DropOverload).Inc()
			g.log.Debug("cgnat record dropped: store workers' queue full")
		}
	}
}

// socketBuffer is the receive buffer asked for on the UDP socket.
const socketBuffer = 4 << 20
