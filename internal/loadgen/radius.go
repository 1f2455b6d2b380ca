package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/rfc3162"
)

// ErrNoAnswer is returned by Gateway.Send when no authentic
// Accounting-Response came back in time: the request is not acknowledged
// (the server may or may not have stored it).
var ErrNoAnswer = errors.New("loadgen: no Accounting-Response")

// Status is an Acct-Status-Type (RFC 2866 section 5.1).
type Status uint32

// Accounting statuses.
const (
	Start         Status = Status(rfc2866.AcctStatusType_Value_Start)
	Stop          Status = Status(rfc2866.AcctStatusType_Value_Stop)
	Interim       Status = Status(rfc2866.AcctStatusType_Value_InterimUpdate)
	AccountingOn  Status = Status(rfc2866.AcctStatusType_Value_AccountingOn)
	AccountingOff Status = Status(rfc2866.AcctStatusType_Value_AccountingOff)
)

func (s Status) String() string {
	switch s {
	case Start:
		return "Start"
	case Stop:
		return "Stop"
	case Interim:
		return "Interim-Update"
	case AccountingOn:
		return "Accounting-On"
	case AccountingOff:
		return "Accounting-Off"
	}
	return fmt.Sprintf("Status(%d)", uint32(s))
}

// Request is one Accounting-Request.
type Request struct {
	Status Status
	// Addr is the subscriber's address: Framed-IP-Address for IPv4,
	// Framed-IPv6-Prefix (its /64) for IPv6. Unset for Accounting-On/Off.
	Addr netip.Addr
	// MSISDN goes in Calling-Station-Id (E.164, "+" optional).
	MSISDN    string
	SessionID string // Acct-Session-Id
	// SessionTime is Acct-Session-Time in seconds (Interim-Update, Stop).
	SessionTime uint32
	// Event is the Event-Timestamp (RFC 2869; now when zero).
	Event time.Time
}

// Gateway is a packet gateway (NAS) sending accounting from its own UDP
// socket, one request in flight at a time. Set the fields before the first
// Send; Send is safe for concurrent use (calls queue).
type Gateway struct {
	// Server is the accounting server's UDP address, host:port.
	Server string
	Secret []byte
	// Source is the local address the socket binds to (it must be inside
	// a client CIDR the server accepts); the zero Addr lets the system
	// choose.
	Source netip.Addr
	// NASIP is sent as NAS-IP-Address (Source when zero and Source is
	// IPv4); NASID as NAS-Identifier when not empty.
	NASIP netip.Addr
	NASID string
	// Timeout is how long one attempt waits for its answer (1 s when zero);
	// Retries how many times the same packet is retransmitted after a
	// timeout (0: none).
	Timeout time.Duration
	Retries int

	mu   sync.Mutex
	conn *net.UDPConn
	id   uint8
	buf  []byte
}

func (g *Gateway) timeout() time.Duration {
	if g.Timeout <= 0 {
		return time.Second
	}
	return g.Timeout
}

func (g *Gateway) dial() error {
	if g.conn != nil {
		return nil
	}
	raddr, err := net.ResolveUDPAddr("udp", g.Server)
	if err != nil {
		return fmt.Errorf("loadgen: gateway server address: %w", err)
	}
	var laddr *net.UDPAddr
	if g.Source.IsValid() {
		laddr = &net.UDPAddr{IP: g.Source.AsSlice()}
	}
	c, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		return fmt.Errorf("loadgen: gateway socket: %w", err)
	}
	g.conn = c
	g.buf = make([]byte, 4096)
	return nil
}

// Close closes the gateway's socket; a later Send opens a new one.
func (g *Gateway) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn == nil {
		return nil
	}
	err := g.conn.Close()
	g.conn = nil
	return err
}

// Encode builds the Accounting-Request packet for r with the next
// identifier. The bytes are what a retransmission sends again.
func (g *Gateway) Encode(r Request) ([]byte, error) {
	g.mu.Lock()
	g.id++
	id := g.id
	g.mu.Unlock()
	p := radius.New(radius.CodeAccountingRequest, g.Secret)
	p.Identifier = id
	if err := g.fill(p, r); err != nil {
		return nil, err
	}
	return p.Encode()
}

func (g *Gateway) fill(p *radius.Packet, r Request) error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(rfc2866.AcctStatusType_Set(p, rfc2866.AcctStatusType(r.Status)))
	nasIP := g.NASIP
	if !nasIP.IsValid() && g.Source.Is4() {
		nasIP = g.Source
	}
	if nasIP.IsValid() {
		add(rfc2865.NASIPAddress_Set(p, nasIP.AsSlice()))
	}
	if g.NASID != "" {
		add(rfc2865.NASIdentifier_SetString(p, g.NASID))
	}
	switch {
	case r.Addr.Is4():
		add(rfc2865.FramedIPAddress_Set(p, r.Addr.AsSlice()))
	case r.Addr.Is6():
		prefix := netip.PrefixFrom(r.Addr, 64).Masked()
		add(rfc3162.FramedIPv6Prefix_Set(p, &net.IPNet{IP: prefix.Addr().AsSlice(), Mask: net.CIDRMask(64, 128)}))
	}
	if r.MSISDN != "" {
		add(rfc2865.CallingStationID_SetString(p, r.MSISDN))
	}
	if r.SessionID != "" {
		add(rfc2866.AcctSessionID_SetString(p, r.SessionID))
	}
	if r.Status == Interim || r.Status == Stop {
		add(rfc2866.AcctSessionTime_Set(p, rfc2866.AcctSessionTime(r.SessionTime)))
	}
	ev := r.Event
	if ev.IsZero() {
		ev = time.Now()
	}
	add(rfc2869.EventTimestamp_Set(p, ev))
	return errors.Join(errs...)
}

// Send sends r and waits for an authentic Accounting-Response. It returns
// nil once the server acknowledged r, ErrNoAnswer when no answer came
// within the timeout and retries, or another error (socket, encoding).
func (g *Gateway) Send(ctx context.Context, r Request) error {
	pkt, err := g.Encode(r)
	if err != nil {
		return fmt.Errorf("loadgen: encode %s: %w", r.Status, err)
	}
	return g.SendPacket(ctx, pkt)
}

// SendPacket sends an encoded Accounting-Request (from Encode) and waits
// for its authentic answer, retransmitting the same bytes after each
// timeout, as a gateway does.
func (g *Gateway) SendPacket(ctx context.Context, pkt []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.dial(); err != nil {
		return err
	}
	for attempt := 0; attempt <= g.Retries; attempt++ {
		if err := ctxDone(ctx); err != nil {
			return err
		}
		if _, err := g.conn.Write(pkt); err != nil {
			// A closed port answers ICMP; the server is down. Not an ack.
			if isRefused(err) {
				if err := sleepCtx(ctx, g.timeout()); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("loadgen: send: %w", err)
		}
		deadline := time.Now().Add(g.timeout())
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if ok, err := g.await(pkt, deadline); err != nil || ok {
			return err
		}
	}
	if err := ctxDone(ctx); err != nil {
		return err
	}
	return ErrNoAnswer
}

// ctxDone is ctx.Err(), also once ctx's deadline has passed but its timer
// has not fired yet (on a busy machine that can take milliseconds, during
// which an attempt would get a read deadline in the past, count as
// unanswered at once, and be sent again while the server still applies
// it).
func ctxDone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// await reads until the authentic answer to pkt arrives (true) or the
// deadline passes (false). Stale or forged datagrams are skipped.
func (g *Gateway) await(pkt []byte, deadline time.Time) (bool, error) {
	if err := g.conn.SetReadDeadline(deadline); err != nil {
		return false, err
	}
	for {
		n, err := g.conn.Read(g.buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return false, nil
			}
			if isRefused(err) {
				// The server's port is closed (it is down): wait out the
				// attempt as a gateway would.
				time.Sleep(time.Until(deadline))
				return false, nil
			}
			return false, fmt.Errorf("loadgen: receive: %w", err)
		}
		resp := g.buf[:n]
		if n < 20 || resp[1] != pkt[1] || radius.Code(resp[0]) != radius.CodeAccountingResponse {
			continue
		}
		if radius.IsAuthenticResponse(resp, pkt, g.Secret) {
			return true, nil
		}
	}
}

func isRefused(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection refused")
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Subscriber is a device whose sessions Accounting plays.
type Subscriber struct {
	Addr   netip.Addr
	MSISDN string
}

// SubscriberState is what Accounting did for one subscriber.
type SubscriberState struct {
	Subscriber
	// Gateway is the index of the gateway that carries its sessions.
	Gateway int
	// LastAcked is the last request the server acknowledged (nil: none).
	LastAcked *Request
	// Pending is a request sent but not acknowledged (nil: none); the
	// server may or may not have stored it. Requests for a subscriber are
	// strictly ordered, so at most one is pending.
	Pending *Request
	// Acked and NoAnswer count its requests.
	Acked, NoAnswer int

	sessions  int
	interims  int
	pendingPk []byte
}

// Holds says what a server that applied r keeps for r.Addr: a session
// (for r.MSISDN and r.SessionID) after Start or Interim-Update, none after
// Stop.
func (r *Request) Holds() bool { return r.Status == Start || r.Status == Interim }

// Allows reports whether a session found (or not) for the subscriber's
// address after the run is one the acknowledged history allows: the state
// after the last acknowledged request, or after the pending one (the
// server may have stored it without answering). A subscriber with nothing
// acknowledged and nothing pending must have no session.
func (s *SubscriberState) Allows(found bool, msisdn, sessionID string) bool {
	match := func(r *Request) bool {
		if !r.Holds() {
			return !found
		}
		return found && sessionID == r.SessionID && sameNumber(msisdn, r.MSISDN)
	}
	if s.LastAcked == nil && s.Pending == nil {
		return !found
	}
	if s.LastAcked != nil && match(s.LastAcked) {
		return true
	}
	if s.Pending != nil && match(s.Pending) {
		return true
	}
	// Nothing acknowledged yet and a pending Start not applied: no session.
	return s.LastAcked == nil && !found
}

func sameNumber(a, b string) bool { return strings.TrimPrefix(a, "+") == strings.TrimPrefix(b, "+") }

// Accounting plays many subscribers' sessions across many gateways: for
// each subscriber in turn, Start, Interims Interim-Updates, Stop, then a
// new session. Each gateway carries the subscribers i with i % len(Gateways)
// equal to its index and has one request in flight, so requests for one
// address are strictly ordered. A request that gets no answer is
// retransmitted (the same bytes) on that subscriber's next turn, as a
// gateway keeps retrying; meanwhile the gateway moves on to its other
// subscribers.
type Accounting struct {
	Gateways    []*Gateway
	Subscribers []Subscriber
	// Interims is the number of Interim-Updates per session.
	Interims int
	// Rate limits the total requests per second (0: as fast as answered).
	Rate float64
	// Requests stops the run after that many requests were sent (0: until
	// the context is done).
	Requests int
	// SessionPrefix starts every Acct-Session-Id, so runs on the same
	// data do not reuse ids ("s" when empty).
	SessionPrefix string
	// Observe, when set, is called (concurrently) after each request with
	// its status, round-trip time and whether it was acknowledged.
	Observe func(s Status, rtt time.Duration, acked bool)

	mu              sync.Mutex
	sent            int
	acked, noAnswer atomic.Int64
	state           []SubscriberState
}

// AccountingReport is what an Accounting run sent and what was
// acknowledged.
type AccountingReport struct {
	// Sent, Acked and NoAnswer count this run's requests.
	Sent, Acked, NoAnswer int
	Elapsed               time.Duration
	// Subscribers holds, per subscriber (same order as Accounting.Subscribers),
	// the last acknowledged and the pending request, and its counts over
	// every run.
	Subscribers []SubscriberState
}

// Run drives the load until ctx is done or Requests were sent (in this
// run). A later Run on the same Accounting continues every subscriber
// where the last one left it, a pending request first, as gateways keep
// retrying through a server restart. Run returns
// an error only for a broken setup (socket, encoding); unanswered requests
// are counted, not errors.
func (a *Accounting) Run(ctx context.Context) (AccountingReport, error) {
	if len(a.Gateways) == 0 || len(a.Subscribers) == 0 {
		return AccountingReport{}, errors.New("loadgen: Accounting needs gateways and subscribers")
	}
	prefix := a.SessionPrefix
	if prefix == "" {
		prefix = "s"
	}
	if len(a.state) != len(a.Subscribers) {
		a.state = make([]SubscriberState, len(a.Subscribers))
		for i, s := range a.Subscribers {
			a.state[i] = SubscriberState{Subscriber: s, Gateway: i % len(a.Gateways)}
		}
	}
	a.sent = 0
	a.acked.Store(0)
	a.noAnswer.Store(0)
	var lim *rate.Limiter
	if a.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(a.Rate), max(1, int(a.Rate/100)))
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, len(a.Gateways))
	for gi, g := range a.Gateways {
		var mine []int
		for i := range a.state {
			if a.state[i].Gateway == gi {
				mine = append(mine, i)
			}
		}
		if len(mine) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.drive(ctx, g, mine, prefix, lim); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	rep := AccountingReport{
		Sent: a.sent, Acked: int(a.acked.Load()), NoAnswer: int(a.noAnswer.Load()),
		Elapsed: time.Since(t0), Subscribers: slices.Clone(a.state),
	}
	return rep, <-errc
}

// take reserves one request of the budget.
func (a *Accounting) take() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.Requests > 0 && a.sent >= a.Requests {
		return false
	}
	a.sent++
	return true
}

func (a *Accounting) drive(ctx context.Context, g *Gateway, mine []int, prefix string, lim *rate.Limiter) error {
	for turn := 0; ; turn++ {
		s := &a.state[mine[turn%len(mine)]]
		if ctxDone(ctx) != nil || !a.take() {
			return nil
		}
		if lim != nil {
			if err := lim.Wait(ctx); err != nil {
				return nil
			}
		}
		if s.Pending == nil {
			r := a.next(s, prefix)
			pkt, err := g.Encode(r)
			if err != nil {
				return err
			}
			s.Pending, s.pendingPk = &r, pkt
		}
		status := s.Pending.Status
		t0 := time.Now()
		err := g.SendPacket(ctx, s.pendingPk)
		rtt := time.Since(t0)
		switch {
		case err == nil:
			a.acked.Add(1)
			s.Acked++
			s.LastAcked, s.Pending, s.pendingPk = s.Pending, nil, nil
		case errors.Is(err, ErrNoAnswer):
			a.noAnswer.Add(1)
			s.NoAnswer++
		case ctxDone(ctx) != nil:
			// Cut short by the end of the run: still pending.
			return nil
		default:
			return err
		}
		if a.Observe != nil {
			a.Observe(status, rtt, err == nil)
		}
	}
}

// next is the subscriber's next request after its last acknowledged one.
func (a *Accounting) next(s *SubscriberState, prefix string) Request {
	last := s.LastAcked
	r := Request{Addr: s.Addr, MSISDN: s.MSISDN}
	switch {
	case last == nil || last.Status == Stop:
		s.sessions++
		s.interims = 0
		r.Status = Start
		r.SessionID = fmt.Sprintf("%s-%s-%d", prefix, s.Addr, s.sessions)
	case s.interims < a.Interims:
		s.interims++
		r.Status = Interim
		r.SessionID = last.SessionID
		r.SessionTime = uint32(s.interims)
	default:
		r.Status = Stop
		r.SessionID = last.SessionID
		r.SessionTime = uint32(s.interims + 1)
	}
	return r
}
