package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/numbergate/numbergate/internal/config"
	"github.com/numbergate/numbergate/internal/nv"
)

const sessionsUsage = `usage: numbergate sessions <subcommand> --config FILE [flags]

subcommands:
  list                    list the network sessions (RADIUS accounting)
  lookup IP[:PORT]        show the session behind an address; with a port,
                          the address is first mapped through CGNAT

Numbers are masked unless --show-numbers is given.
Run "numbergate sessions <subcommand> -h" for its flags.
`

// Sessions runs `numbergate sessions list|lookup`. args start with the
// subcommand. A request for help returns flag.ErrHelp.
func (c *CLI) Sessions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, args, err := subcommand(args, "sessions", sessionsUsage, stdout)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		return c.sessionsList(ctx, args, stdout, stderr)
	case "lookup":
		return c.sessionsLookup(ctx, args, stdout, stderr)
	}
	return fmt.Errorf("sessions: unknown subcommand %q (use list or lookup; numbergate sessions -h)", sub)
}

func (c *CLI) sessionsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sessions list", "--config FILE [--show-numbers]", stdout)
	configPath := fs.String("config", "", "configuration `FILE` (as for numbergate serve)")
	show := fs.Bool("show-numbers", false, "print numbers and IMSIs in full")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("sessions list", rest, *configPath); err != nil {
		return err
	}
	_, st, err := c.openStore(ctx, *configPath)
	if err != nil {
		return err
	}
	defer st.Close()
	sessions, err := st.NetworkSessions(ctx)
	if err != nil {
		return fmt.Errorf("sessions list: %w", err)
	}
	sort.Slice(sessions, func(i, j int) bool {
		if a, b := sessions[i].Prefix, sessions[j].Prefix; a != b {
			if a.Addr() != b.Addr() {
				return a.Addr().Less(b.Addr())
			}
			return a.Bits() < b.Bits()
		}
		return sessions[i].SessionID < sessions[j].SessionID
	})
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PREFIX\tNUMBER\tIMSI\tSESSION ID\tCLIENT\tNAS\tSTARTED\tUPDATED")
	for _, s := range sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Prefix, number(s.MSISDN, *show), imsi(s.IMSI, *show),
			dash(s.SessionID), dash(s.Client), dash(s.NAS), formatTime(s.StartedAt), formatTime(s.UpdatedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d session(s)\n", len(sessions))
	routes, err := st.StaticRoutes(ctx)
	if err != nil {
		return fmt.Errorf("sessions list: %w", err)
	}
	if len(routes) > 0 {
		// The static map identifies devices too: show it, as the server
		// loaded it at its last start.
		fmt.Fprintln(stdout)
		tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STATIC PREFIX	NUMBER")
		for _, r := range routes {
			fmt.Fprintf(tw, "%s\t%s\n", r.Prefix, number(r.MSISDN, *show))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "%d static route(s)\n", len(routes))
	}
	return nil
}

func (c *CLI) sessionsLookup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sessions lookup", "--config FILE [--show-numbers] [--at RFC3339] IP[:PORT]", stdout)
	configPath := fs.String("config", "", "configuration `FILE` (as for numbergate serve)")
	show := fs.Bool("show-numbers", false, "print the number and IMSI in full")
	atFlag := fs.String("at", "", "the `TIME` the connection was seen (RFC 3339, such as 2025-01-02T15:04:05Z); default now")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errors.New("sessions lookup: give exactly one address, IP or IP:PORT ([IPv6]:PORT) (numbergate sessions lookup -h)")
	}
	if *configPath == "" {
		return errors.New("sessions lookup: --config is required")
	}
	addr, addrPort, hasPort, err := parseTarget(rest[0])
	if err != nil {
		return fmt.Errorf("sessions lookup: %w", err)
	}
	at := c.now()
	if *atFlag != "" {
		at, err = time.Parse(time.RFC3339, *atFlag)
		if err != nil {
			return fmt.Errorf("sessions lookup: --at %q is not an RFC 3339 time such as 2025-01-02T15:04:05Z", *atFlag)
		}
	}

	cfg, st, err := c.openStore(ctx, *configPath)
	if err != nil {
		return err
	}
	defer st.Close()

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	target := addr
	if hasPort {
		private, err := st.PrivateAddrFor(ctx, addrPort, at)
		switch {
		case err == nil:
			target = private
			fmt.Fprintf(tw, "cgnat\t%s held by %s at %s\n", addrPort, private, formatTime(at))
		case errors.Is(err, nv.ErrNotFound):
			fmt.Fprintf(stderr, "no CGNAT allocation holds %s at %s; looking up %s itself\n", addrPort, formatTime(at), addr)
		default:
			return fmt.Errorf("sessions lookup: CGNAT mapping of %s: %w", addrPort, err)
		}
	}

	idle := config.DefaultIdleTimeout
	if cfg.Network.RADIUS != nil {
		idle = cfg.Network.RADIUS.IdleTimeout
	}
	notBefore := at.Add(-idle)
	s, err := st.SessionFor(ctx, target, notBefore)
	if err != nil && !errors.Is(err, nv.ErrNotFound) {
		return fmt.Errorf("sessions lookup: %w", err)
	}
	if err == nil {
		printSession(tw, target, s, *show)
	} else {
		fmt.Fprintf(tw, "session\tnone for %s updated since %s\n", target, formatTime(notBefore))
	}

	// What the server answers: the same sources, in the same order (the
	// resolver serve builds; the lookup is never re-implemented here).
	if c.Resolver == nil {
		tw.Flush()
		return errors.New("sessions lookup: no network resolver (CLI.Resolver is set by numbergate)")
	}
	res, rerr := c.Resolver(ctx, cfg, st)
	if rerr != nil {
		tw.Flush()
		return fmt.Errorf("sessions lookup: %w", rerr)
	}
	conn := nv.Connection{Addr: netip.AddrPortFrom(addr, 0), At: at}
	if hasPort {
		conn.Addr = addrPort
	}
	id, rerr := res.Resolve(ctx, conn)
	switch {
	case rerr == nil:
		fmt.Fprintf(tw, "server answers\t%s (source %s)\n", number(id.MSISDN, *show), id.Source)
		return tw.Flush()
	case errors.Is(rerr, nv.ErrUnknownDevice):
		tw.Flush()
		return fmt.Errorf("the server would refuse %s (access_denied): no configured network source identifies it at %s", conn.Addr, formatTime(at))
	default:
		tw.Flush()
		return fmt.Errorf("sessions lookup: %w", rerr)
	}
}

func printSession(tw io.Writer, target netip.Addr, s nv.NetworkSession, show bool) {
	fmt.Fprintf(tw, "address\t%s\n", target)
	fmt.Fprintf(tw, "prefix\t%s\n", s.Prefix)
	fmt.Fprintf(tw, "number\t%s\n", number(s.MSISDN, show))
	if s.IMSI != "" {
		fmt.Fprintf(tw, "imsi\t%s\n", imsi(s.IMSI, show))
	}
	fmt.Fprintf(tw, "session id\t%s\n", dash(s.SessionID))
	fmt.Fprintf(tw, "radius client\t%s\n", dash(s.Client))
	fmt.Fprintf(tw, "nas\t%s\n", dash(s.NAS))
	fmt.Fprintf(tw, "started\t%s\n", formatTime(s.StartedAt))
	fmt.Fprintf(tw, "updated\t%s\n", formatTime(s.UpdatedAt))
}

// parseTarget accepts IP, [IPv6], IP:PORT or [IPv6]:PORT.
func parseTarget(s string) (addr netip.Addr, addrPort netip.AddrPort, hasPort bool, err error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		a := ap.Addr().Unmap()
		if a.Zone() != "" {
			return netip.Addr{}, netip.AddrPort{}, false, fmt.Errorf("%q: zoned addresses are not network sessions", s)
		}
		return a, netip.AddrPortFrom(a, ap.Port()), true, nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, netip.AddrPort{}, false, fmt.Errorf("%q is not an IP address or IP:PORT", s)
	}
	return a.Unmap(), netip.AddrPort{}, false, nil
}

func number(p nv.PhoneNumber, show bool) string {
	if p == "" {
		return "-"
	}
	if show {
		return string(p)
	}
	return p.Masked()
}

// imsi masks an IMSI but its MCC and MNC (the operator) and last two digits.
func imsi(s string, show bool) string {
	if s == "" {
		return "-"
	}
	if show {
		return s
	}
	if len(s) <= 7 {
		return strings.Repeat("*", len(s))
	}
	return s[:5] + strings.Repeat("*", len(s)-7) + s[len(s)-2:]
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
