package radius

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/numbergate/numbergate/internal/callctx"
	"github.com/numbergate/numbergate/internal/nv"
)

// Config is the RADIUS accounting listener's configuration (network.radius
// in the YAML config).
type Config struct {
	// Clients are the gateways allowed to send accounting.
	Clients []Client
	// IdleTimeout expires sessions with no update for that long (zero: no
	// expiry).
	IdleTimeout time.Duration
}

// Client is a gateway (NAS) allowed to send accounting: its source
// addresses and its shared secret.
type Client struct {
	// Name identifies the client entry in the sessions it records; only
	// packets authenticated against an entry of that name may update, stop
	// or purge them. Empty means the canonical CIDR. Entries sharing a name
	// (say, a gateway's IPv4 and IPv6 addresses) are one client.
	Name   string
	CIDR   netip.Prefix
	Secret []byte
	// RequireMessageAuthenticator drops this client's packets that carry no
	// Message-Authenticator (RFC 3579; recommended against forgery).
	RequireMessageAuthenticator bool
}

// Reasons a packet is dropped.
const (
	DropUnknownClient       = "unknown_client"
	DropNotAccounting       = "not_accounting"
	DropMalformed           = "malformed"
	DropBadAuthenticator    = "bad_authenticator"
	DropBadMessageAuth      = "bad_message_authenticator"
	DropMissingMessageAuth  = "missing_message_authenticator"
	DropMissingAttribute    = "missing_attribute"
	DropBadCallingStationID = "bad_calling_station_id"
	DropOverload            = "overload"
	DropInFlight            = "in_flight" // a retransmit of a packet still being applied
	DropStoreError          = "store_error"
	// DropStoreUnavailable: the store cannot write right now (disk full,
	// database down; nv.ErrUnavailable). No answer, so the gateway retries.
	DropStoreUnavailable = "store_unavailable"
	DropPanic            = "panic"
)

// Options are the server's injected dependencies.
type Options struct {
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Logger (discarded when nil).
	Logger *slog.Logger
	// Metrics are the collectors to count in (unregistered ones when nil).
	Metrics *Metrics
	// Workers is the number of store workers (256 when zero); QueueSize
	// the total number of authentic packets waiting for them (16384 when
	// zero). Packets are spread by subscriber address, so one address's
	// packets are applied in arrival order; the workers' store calls share
	// the store's group commits, so more workers mean bigger batches, not
	// more syncs. A packet that finds its worker's queue full is dropped
	// unanswered (the gateway retransmits) and counted as "overload".
	Workers   int
	QueueSize int
	// ExpireEvery is the period of the idle sweep (IdleTimeout/10, between
	// 10 s and 5 min, when zero).
	ExpireEvery time.Duration
	// ReplayWindow is how long a recorded packet is remembered so its
	// retransmits are answered without a store call (1 h when zero);
	// ReplayEntries bounds that memory (262144 when zero).
	ReplayWindow  time.Duration
	ReplayEntries int
	// StoreTimeout bounds each store call (5 s when zero).
	StoreTimeout time.Duration
}

// Server is the RADIUS accounting server.
type Server struct {
	cfg     Config
	clients []Client // most specific CIDR first
	store   nv.NetworkSessionStore
	now     func() time.Time
	log     *slog.Logger
	metrics *Metrics
	opts    Options
	replay  *replayCache

	addr   atomic.Pointer[net.Addr]
	queued atomic.Int64 // authentic packets waiting for a worker

	logMu   sync.Mutex
	lastLog map[string]time.Time

	// inflight holds the replay keys of the packets queued or being
	// applied: a retransmit of one is dropped (the first one's answer
	// serves), so that it is never applied twice with different arrival
	// times (a retransmitted Accounting-On would purge Starts received
	// after the original).
	inflightMu sync.Mutex
	inflight   map[replayKey]struct{}
}

// New returns a server for cfg that records into store. It reports every
// configuration problem at once.
func New(cfg Config, store nv.NetworkSessionStore, opts Options) (*Server, error) {
	var problems []error
	for i, c := range cfg.Clients {
		if !c.CIDR.IsValid() {
			problems = append(problems, fmt.Errorf("radius client %d: invalid cidr", i))
		}
		if len(c.Secret) == 0 {
			problems = append(problems, fmt.Errorf("radius client %d: empty secret", i))
		}
	}
	if cfg.IdleTimeout < 0 {
		problems = append(problems, errors.New("radius: negative idle_timeout"))
	}
	if store == nil {
		problems = append(problems, errors.New("radius: nil store"))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Workers <= 0 {
		opts.Workers = 256
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 16384
	}
	if opts.ReplayWindow <= 0 {
		opts.ReplayWindow = time.Hour
	}
	if opts.ReplayEntries <= 0 {
		opts.ReplayEntries = 1 << 18
	}
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = 5 * time.Second
	}
	if opts.ExpireEvery <= 0 {
		opts.ExpireEvery = min(max(cfg.IdleTimeout/10, 10*time.Second), 5*time.Minute)
	}
	clients := make([]Client, len(cfg.Clients))
	for i, c := range cfg.Clients {
		c.CIDR = nv.CanonicalPrefix(c.CIDR)
		if c.Name == "" {
			c.Name = c.CIDR.String()
		}
		clients[i] = c
	}
	sort.SliceStable(clients, func(i, j int) bool { return clients[i].CIDR.Bits() > clients[j].CIDR.Bits() })
	return &Server{
		cfg:      cfg,
		clients:  clients,
		store:    store,
		now:      opts.Now,
		log:      opts.Logger.With("component", "radius"),
		metrics:  opts.Metrics,
		opts:     opts,
		replay:   newReplayCache(opts.ReplayWindow, opts.ReplayEntries),
		lastLog:  map[string]time.Time{},
		inflight: map[replayKey]struct{}{},
	}, nil
}

// Addr returns the address the server is listening on (nil before it
// serves).
func (s *Server) Addr() net.Addr {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return nil
}

// QueueDepth is how many authentic packets wait for a store worker now
// (backpressure: it grows when the store cannot keep up).
func (s *Server) QueueDepth() int { return int(s.queued.Load()) }

// drop counts and logs a dropped packet (never with the number; at most one
// warning per reason every 10 s so a flood does not flood the log).
func (s *Server) drop(reason string, from netip.AddrPort, detail string) {
	s.metrics.Packets.WithLabelValues(reason).Inc()
	now := time.Now()
	s.logMu.Lock()
	loud := now.Sub(s.lastLog[reason]) >= 10*time.Second
	if loud {
		s.lastLog[reason] = now
	}
	s.logMu.Unlock()
	level := slog.LevelDebug
	if loud {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, "accounting packet dropped", "reason", reason, "from", from.String(), "detail", detail)
}

func (s *Server) handled(outcome string) {
	s.metrics.Packets.WithLabelValues(outcome).Inc()
}

// job is an authentic accounting request waiting for a worker.
type job struct {
	req   *request
	conn  net.PacketConn
	to    net.Addr       // the sender, when conn is not a udpConn
	toUDP netip.AddrPort // the sender, as read, when it is
}

// udpConn is what *net.UDPConn offers beyond net.PacketConn: reading and
// answering without a net.Addr (two allocations per packet saved).
type udpConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// reply sends b to a job's sender.
func (j job) reply(b []byte) {
	if u, ok := j.conn.(udpConn); ok && j.to == nil {
		u.WriteToUDPAddrPort(b, j.toUDP)
		return
	}
	j.conn.WriteTo(b, j.to)
}

// Serve reads packets from pc until ctx is cancelled, then waits for the
// packets in hand and returns nil. It does not close pc.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn) error {
	la := pc.LocalAddr()
	s.addr.Store(&la)
	// A burst (a gateway's Accounting-On and the Starts of all its
	// subscribers) must not overflow the socket while the store commits:
	// ask for a large receive buffer (the kernel caps it at rmem_max).
	if u, ok := pc.(interface{ SetReadBuffer(int) error }); ok {
		_ = u.SetReadBuffer(socketBuffer)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	per := max(s.opts.QueueSize/s.opts.Workers, 1)
	shards := make([]chan job, s.opts.Workers)
	var wg sync.WaitGroup
	for i := range shards {
		shards[i] = make(chan job, per)
		wg.Add(1)
		go func(ch <-chan job) {
			defer wg.Done()
			// Packets in hand when the server stops are still recorded
			// and answered: their store calls never see ctx end.
			calls := callctx.New(context.WithoutCancel(ctx), s.opts.StoreTimeout)
			defer calls.Close()
			for j := range ch {
				s.queued.Add(-1)
				s.work(calls, j)
			}
		}(shards[i])
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.expireLoop(ctx)
	}()
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Now()) })
	defer stop()

	var err error
	buf := make([]byte, 2*maxPacket)
	u, isUDP := pc.(udpConn)
	for {
		var (
			n      int
			from   net.Addr
			fromAP netip.AddrPort
			raw    netip.AddrPort
			rerr   error
		)
		if isUDP {
			n, raw, rerr = u.ReadFromUDPAddrPort(buf)
			fromAP = netip.AddrPortFrom(raw.Addr().Unmap().WithZone(""), raw.Port())
		} else {
			n, from, rerr = pc.ReadFrom(buf)
			if rerr == nil {
				fromAP = addrPortOf(from)
			}
		}
		if rerr != nil {
			if ctx.Err() != nil {
				break
			}
			var ne net.Error
			if errors.As(rerr, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(rerr, net.ErrClosed) {
				err = rerr
				break
			}
			s.log.Warn("radius read failed", "err", rerr)
			continue
		}
		req, reply := s.receive(buf[:n], fromAP)
		if reply != nil { // answered from the replay cache
			job{conn: pc, to: from, toUDP: raw}.reply(reply)
			continue
		}
		if req == nil {
			continue
		}
		shard := shards[req.shard%uint32(len(shards))]
		s.queued.Add(1)
		select {
		case shard <- job{req: req, conn: pc, to: from, toUDP: raw}:
		default:
			s.done(req)
			s.queued.Add(-1)
			s.drop(DropOverload, fromAP, "worker queue full")
		}
	}
	for _, ch := range shards {
		close(ch)
	}
	cancel()
	wg.Wait()
	return err
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}

// receive checks a datagram in the reading goroutine: sender, code,
// authenticators and attributes, without any store call. It returns the
// decoded request to apply, or an answer for a retransmit of a packet
// already recorded, or neither (dropped).
func (s *Server) receive(b []byte, from netip.AddrPort) (req *request, reply []byte) {
	defer func() {
		if r := recover(); r != nil {
			req, reply = nil, nil
			s.drop(DropPanic, from, fmt.Sprint(r))
			s.log.Error("panic handling accounting packet", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	arrived := s.now()
	client, ok := s.clientFor(from.Addr())
	if !ok {
		s.drop(DropUnknownClient, from, "source address not in any client cidr")
		return nil, nil
	}
	req, reason, detail := decode(b, client, from)
	if reason != "" {
		s.drop(reason, from, detail)
		return nil, nil
	}
	req.arrived = arrived
	if req.msgAuth {
		s.metrics.MessageAuthenticators.Inc()
	}
	key := req.key
	if resp, ok := s.replay.answer(key, arrived); ok {
		s.handled(OutcomeDuplicate)
		return nil, resp
	}
	s.inflightMu.Lock()
	_, busy := s.inflight[key]
	if !busy {
		s.inflight[key] = struct{}{}
	}
	s.inflightMu.Unlock()
	if busy {
		s.drop(DropInFlight, from, "retransmit of a packet still being applied")
		return nil, nil
	}
	return req, nil
}

func (s *Server) clientFor(a netip.Addr) (Client, bool) {
	for _, c := range s.clients {
		if c.CIDR.Contains(a) {
			return c, true
		}
	}
	return Client{}, false
}

// done forgets that req is in flight.
func (s *Server) done(req *request) {
	s.inflightMu.Lock()
	delete(s.inflight, req.key)
	s.inflightMu.Unlock()
}

// work applies one authentic request, its store calls bounded by
// StoreTimeout, and answers it once it is stored.
func (s *Server) work(calls *callctx.Deadline, j job) {
	defer s.done(j.req)
	defer func() {
		if r := recover(); r != nil {
			s.drop(DropPanic, j.req.from, fmt.Sprint(r))
			s.log.Error("panic applying accounting packet", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	resp, err := func() ([]byte, error) {
		defer calls.Stop() // also if apply panics: Start and Stop pair up
		return s.apply(calls.Start(), j.req)
	}()
	if err != nil {
		return
	}
	j.reply(resp)
}

// apply records req in the store and returns the encoded
// Accounting-Response, or an error (already counted and logged) when
// nothing must be answered. ctx bounds its store calls (work's ends after
// StoreTimeout; stopping the server does not end it).
func (s *Server) apply(ctx context.Context, req *request) ([]byte, error) {
	now := s.now()
	outcome, err := s.record(ctx, req, now)
	if err != nil {
		err = callctx.Explain(ctx, err)
		reason := DropStoreError
		if errors.Is(err, nv.ErrUnavailable) {
			reason = DropStoreUnavailable
		}
		s.drop(reason, req.from, err.Error())
		return nil, err
	}
	resp, err := req.response()
	if err != nil {
		s.drop(DropMalformed, req.from, "cannot encode response: "+err.Error())
		return nil, err
	}
	s.replay.remember(req.key, resp, now)
	s.handled(outcome)
	return resp, nil
}

func (s *Server) record(ctx context.Context, req *request, now time.Time) (string, error) {
	// The packet's logger is built only when a line is written: building it
	// for every packet was a tenth of the allocations under load.
	log := lazyLogger{f: func() *slog.Logger {
		return s.log.With("from", req.from.String(), "client", req.client, "nas", req.nas)
	}, base: s.log}
	switch req.status {
	case statusStart, statusInterim:
		outcome := OutcomeStart
		if req.status == statusInterim {
			outcome = OutcomeInterim
		}
		event := now.Add(-time.Duration(req.delay) * time.Second)
		if !req.eventTime.IsZero() {
			event = req.eventTime
		}
		if idle := s.cfg.IdleTimeout; idle > 0 && event.Before(now.Add(-idle)) {
			log.Info("stale accounting update acknowledged, not applied", "status", outcome, "event", event)
			return OutcomeStale, nil
		}
		for _, p := range req.prefixes {
			sess := nv.NetworkSession{
				Prefix:    p,
				MSISDN:    req.msisdn,
				SessionID: req.sessionID,
				NAS:       req.nas,
				IMSI:      req.imsi,
				StartedAt: event,
				UpdatedAt: req.arrived,
				Client:    req.client,
			}
			var err error
			if req.status == statusStart {
				err = s.store.StartSession(ctx, sess)
			} else {
				if req.sessionTime > 0 {
					sess.StartedAt = event.Add(-time.Duration(req.sessionTime) * time.Second)
				}
				err = s.store.UpsertSession(ctx, sess)
				if errors.Is(err, nv.ErrNotFound) {
					// Another client holds the address: leave it alone.
					log.Warn("interim-update for an address another radius client holds, not applied", "prefix", p)
					outcome, err = OutcomeForeign, nil
				}
			}
			if err != nil {
				return "", fmt.Errorf("%s %s: %w", outcome, p, err)
			}
		}
		if log.enabled(slog.LevelDebug) { // the arguments cost allocations: not for every packet
			log.Debug("session recorded", "status", outcome, "prefixes", req.prefixes, "msisdn", req.msisdn.Masked())
		}
		return outcome, nil
	case statusStop:
		for _, p := range req.prefixes {
			removed, err := s.store.StopSession(ctx, req.client, p, req.sessionID)
			if err != nil {
				return "", fmt.Errorf("stop %s: %w", p, err)
			}
			if log.enabled(slog.LevelDebug) {
				log.Debug("session stop", "prefix", p, "removed", removed)
			}
		}
		return OutcomeStop, nil
	case statusOn, statusOff:
		outcome := OutcomeAccountingOn
		if req.status == statusOff {
			outcome = OutcomeAccountingOff
		}
		// Only this client's sessions, and only those last updated before
		// the On/Off arrived: a Start received after it, even if a worker
		// applied it first, is kept.
		n, err := s.store.PurgeClient(ctx, req.client, req.arrived)
		if err != nil {
			return "", fmt.Errorf("purge client %s: %w", req.client, err)
		}
		log.Info("gateway sessions purged", "status", outcome, "sessions", n)
		return outcome, nil
	default:
		log.Debug("accounting status not used, acknowledged", "status", req.status)
		return OutcomeOther, nil
	}
}

// ExpireIdle removes the sessions with no update for IdleTimeout and returns
// how many. It does nothing when IdleTimeout is zero.
func (s *Server) ExpireIdle(ctx context.Context) (int, error) {
	if s.cfg.IdleTimeout <= 0 {
		return 0, nil
	}
	n, err := s.store.ExpireSessions(ctx, s.now().Add(-s.cfg.IdleTimeout))
	if err != nil {
		return 0, fmt.Errorf("radius: expire idle sessions: %w", err)
	}
	if n > 0 {
		s.metrics.SessionsExpired.Add(float64(n))
		s.log.Info("idle sessions expired", "sessions", n)
	}
	return n, nil
}

func (s *Server) expireLoop(ctx context.Context) {
	if s.cfg.IdleTimeout <= 0 {
		return
	}
	t := time.NewTicker(s.opts.ExpireEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.ExpireIdle(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("idle expiry failed", "err", err)
			}
			s.replay.sweep(s.now())
		}
	}
}

// socketBuffer is the receive buffer asked for on the UDP socket.
const socketBuffer = 4 << 20

// lazyLogger builds its logger on the first line it writes at an enabled
// level.
type lazyLogger struct {
	f    func() *slog.Logger
	base *slog.Logger
	l    *slog.Logger
}

// enabled reports whether a line at level would be written; callers check
// it before building costly arguments.
func (z *lazyLogger) enabled(level slog.Level) bool {
	return z.base.Enabled(context.Background(), level)
}

func (z *lazyLogger) log(level slog.Level, msg string, args ...any) {
	if !z.enabled(level) {
		return
	}
	if z.l == nil {
		z.l = z.f()
	}
	z.l.Log(context.Background(), level, msg, args...)
}

func (z *lazyLogger) Debug(msg string, args ...any) { z.log(slog.LevelDebug, msg, args...) }
func (z *lazyLogger) Info(msg string, args ...any)  { z.log(slog.LevelInfo, msg, args...) }
func (z *lazyLogger) Warn(msg string, args ...any)  { z.log(slog.LevelWarn, msg, args...) }
