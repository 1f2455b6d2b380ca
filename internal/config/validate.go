package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// validate turns the raw file into a Config, adding a problem for every
// bad or missing value. The result is only meaningful when ps stays empty.
func validate(raw *rawConfig, getenv func(string) string, ps *problems) *Config {
	cfg := &Config{}
	env := func(name string) string {
		if getenv == nil {
			return ""
		}
		return getenv(name)
	}

	cfg.Listen = addressValue(ps, "listen", raw.Listen, env(EnvListen), EnvListen, true, "")
	cfg.AdminListen = addressValue(ps, "admin_listen", raw.AdminListen, env(EnvAdminListen), EnvAdminListen, false, DefaultAdminListen)

	cfg.Issuer = raw.Issuer
	if raw.Issuer == "" {
		ps.add("issuer", "required: the issuer URL clients see, such as https://nv.example.net")
	} else if err := checkIssuer(raw.Issuer); err != nil {
		ps.add("issuer", "%v", err)
	}

	cfg.Store = storeConfig(ps, raw.Store, env)
	cfg.DataDir = raw.DataDir
	if v := env(EnvDataDir); v != "" {
		cfg.DataDir = v
	} else if strings.TrimSpace(raw.DataDir) == "" && cfg.Store.Driver == DriverSQLite {
		ps.add("data_dir", "required: the directory of the embedded store (or set $%s)", EnvDataDir)
	}

	cfg.TrustedProxies = prefixList(ps, "trusted_proxies", raw.TrustedProxies)

	switch strings.ToLower(raw.LogLevel) {
	case "", "info":
		cfg.LogLevel = slog.LevelInfo
	case "debug":
		cfg.LogLevel = slog.LevelDebug
	case "warn", "warning":
		cfg.LogLevel = slog.LevelWarn
	case "error":
		cfg.LogLevel = slog.LevelError
	default:
		ps.add("log_level", "%q is not a log level (use debug, info, warn or error)", raw.LogLevel)
	}

	if raw.Network != nil {
		cfg.Network = network(ps, raw.Network)
	}
	cfg.ProxyProtocol = proxyProtocol(ps, raw.ProxyProtocol)
	cfg.TLS = tlsFiles(ps, "tls", raw.TLS)
	cfg.AdminTLS = tlsFiles(ps, "admin_tls", raw.AdminTLS)

	cfg.Usage = Usage{Retention: DefaultUsageRetention}
	if raw.Usage != nil {
		cfg.Usage.Retention = duration(ps, "usage.retention", raw.Usage.Retention, DefaultUsageRetention, 0)
	}

	cfg.Limits = Limits{AuthorizePerAddress: DefaultAuthorizePerAddress, TokenPerClient: DefaultTokenPerClient, APIPerClient: DefaultAPIPerClient}
	if l := raw.Limits; l != nil {
		cfg.Limits.AuthorizePerAddress = rateValue(ps, "limits.authorize_per_address", l.AuthorizePerAddress, DefaultAuthorizePerAddress)
		cfg.Limits.TokenPerClient = rateValue(ps, "limits.token_per_client", l.TokenPerClient, DefaultTokenPerClient)
		cfg.Limits.APIPerClient = rateValue(ps, "limits.api_per_client", l.APIPerClient, DefaultAPIPerClient)
	}

	cfg.Auth = Auth{TokenLifetime: DefaultTokenLifetime, CodeLifetime: DefaultCodeLifetime, ClockSkew: DefaultClockSkew}
	if raw.Auth != nil {
		cfg.Auth.TokenLifetime = duration(ps, "auth.token_lifetime", raw.Auth.TokenLifetime, DefaultTokenLifetime, MaxTokenLifetime)
		cfg.Auth.CodeLifetime = duration(ps, "auth.code_lifetime", raw.Auth.CodeLifetime, DefaultCodeLifetime, MaxCodeLifetime)
		cfg.Auth.ClockSkew = duration(ps, "auth.clock_skew", raw.Auth.ClockSkew, DefaultClockSkew, MaxClockSkew)
	}
	crossChecks(ps, cfg)
	return cfg
}

func addressValue(ps *problems, path, value, envValue, envName string, required bool, def string) string {
	if envValue != "" {
		if err := checkHostPort(envValue); err != nil {
			ps.add("$"+envName, "%v", err)
		}
		return envValue
	}
	if value == "" {
		if required {
			ps.add(path, "required: a host:port address such as 127.0.0.1:8443 (or set $%s)", envName)
		}
		return def
	}
	if err := checkHostPort(value); err != nil {
		ps.add(path, "%v", err)
	}
	return value
}

func network(ps *problems, raw *rawNetwork) Network {
	var n Network

	seen := map[netip.Prefix]int{}
	for i, s := range raw.Static {
		path := fmt.Sprintf("network.static[%d]", i)
		route := nv.StaticRoute{}
		ok := true
		if s.Prefix == "" {
			ps.add(path+".prefix", "required: an IP address or CIDR prefix")
			ok = false
		} else if p, err := parsePrefix(s.Prefix); err != nil {
			ps.add(path+".prefix", "%v", err)
			ok = false
		} else {
			route.Prefix = p
			if j, dup := seen[p]; dup {
				ps.add(path+".prefix", "%s is already mapped by network.static[%d]", p, j)
			}
			seen[p] = i
		}
		if s.MSISDN == "" {
			ps.add(path+".msisdn", "required: the subscriber's number in E.164 form, such as \"+34600000010\"")
			ok = false
		} else if num, err := nv.NormalizeMSISDN(s.MSISDN); err != nil {
			// Show only the masked form: configs may carry real numbers.
			ps.add(path+".msisdn", "%q is not an E.164 number (write + followed by 5 to 15 digits, the first not 0)", maskedRaw(s.MSISDN))
			ok = false
		} else {
			route.MSISDN = num
		}
		if ok {
			n.Static = append(n.Static, route)
		}
	}

	if r := raw.RADIUS; r != nil {
		n.RADIUS = &RADIUS{}
		if r.Listen == "" {
			ps.add("network.radius.listen", "required: the UDP host:port to receive accounting on, such as 0.0.0.0:1813")
		} else if err := checkHostPort(r.Listen); err != nil {
			ps.add("network.radius.listen", "%v", err)
		}
		n.RADIUS.Listen = r.Listen
		if len(r.Clients) == 0 {
			ps.add("network.radius.clients", "required: at least one gateway (cidr and secret)")
		}
		seen := map[netip.Prefix]int{}
		for i, c := range r.Clients {
			path := fmt.Sprintf("network.radius.clients[%d]", i)
			var client RADIUSClient
			if c.CIDR == "" {
				ps.add(path+".cidr", "required: the gateway's address or CIDR prefix")
			} else if p, err := parsePrefix(c.CIDR); err != nil {
				ps.add(path+".cidr", "%v", err)
			} else {
				client.CIDR = p
				if j, dup := seen[p]; dup {
					ps.add(path+".cidr", "%s is already listed as network.radius.clients[%d]", p, j)
				}
				seen[p] = i
			}
			if c.Secret == "" {
				ps.add(path+".secret", "required: the shared secret configured on the gateway")
			}
			client.Secret = Secret(c.Secret)
			client.Name = radiusClientName(ps, path+".name", c.Name, client.CIDR)
			client.RequireMessageAuthenticator = c.RequireMessageAuthenticator
			n.RADIUS.Clients = append(n.RADIUS.Clients, client)
		}
		n.RADIUS.IdleTimeout = duration(ps, "network.radius.idle_timeout", r.IdleTimeout, DefaultIdleTimeout, 0)
	}

	if c := raw.CGNAT; c != nil {
		n.CGNAT = &CGNAT{SyslogListen: c.SyslogListen, Senders: prefixList(ps, "network.cgnat.senders", c.Senders)}
		if c.SyslogListen != "" {
			if err := checkHostPort(c.SyslogListen); err != nil {
				ps.add("network.cgnat.syslog_listen", "%v", err)
			}
			if len(c.Senders) == 0 {
				ps.add("network.cgnat.senders", "required with syslog_listen: the NATs' addresses or CIDR prefixes (syslog over UDP has no authentication; datagrams from anyone else are dropped)")
			}
		}
		for i, f := range c.Files {
			if strings.TrimSpace(f) == "" {
				ps.add(fmt.Sprintf("network.cgnat.files[%d]", i), "empty file name")
				continue
			}
			n.CGNAT.Files = append(n.CGNAT.Files, f)
		}
		if c.SyslogListen == "" && len(c.Files) == 0 {
			ps.add("network.cgnat", "set syslog_listen, files or both (or remove the section)")
		}
	}

	if h := raw.HeaderEnrichment; h != nil {
		n.HeaderEnrichment = &HeaderEnrichment{}
		if len(h.Proxies) == 0 {
			ps.add("network.header_enrichment.proxies", "required: the enrichment proxies' addresses or CIDR prefixes (headers from anyone else are ignored)")
		}
		n.HeaderEnrichment.Proxies = prefixList(ps, "network.header_enrichment.proxies", h.Proxies)
		if len(h.Headers) == 0 {
			ps.add("network.header_enrichment.headers", "required: the header names that carry the number, such as X-MSISDN")
		}
		seen := map[string]int{}
		for i, name := range h.Headers {
			path := fmt.Sprintf("network.header_enrichment.headers[%d]", i)
			if !validHeaderName(name) {
				ps.add(path, "%q is not a valid HTTP header name", name)
				continue
			}
			c := textproto.CanonicalMIMEHeaderKey(name)
			if j, dup := seen[c]; dup {
				ps.add(path, "%s is already listed as network.header_enrichment.headers[%d]", name, j)
				continue
			}
			seen[c] = i
			n.HeaderEnrichment.Headers = append(n.HeaderEnrichment.Headers, c)
		}
	}

	if raw.Order == nil {
		for _, s := range DefaultOrder {
			if n.Configured(s) {
				n.Order = append(n.Order, s)
			}
		}
		return n
	}
	seenSource := map[string]int{}
	for i, s := range raw.Order {
		path := fmt.Sprintf("network.order[%d]", i)
		switch {
		case !slices.Contains(DefaultOrder, s):
			ps.add(path, "%q is not a network source (use %s)", s, strings.Join(DefaultOrder, ", "))
		case seenSource[s] > 0:
			ps.add(path, "%q is listed twice", s)
		case !n.Configured(s) && !(s == nv.SourceStatic && len(raw.Static) > 0):
			ps.add(path, "%q is not configured (there is no network.%s section)", s, sectionName(s))
		default:
			n.Order = append(n.Order, s)
		}
		seenSource[s]++
	}
	for _, s := range DefaultOrder {
		if seenSource[s] == 0 && (n.Configured(s) || s == nv.SourceStatic && len(raw.Static) > 0) {
			ps.add("network.order", "%q is configured but missing from the order", s)
		}
	}
	return n
}

func sectionName(source string) string {
	if source == nv.SourceHeader {
		return "header_enrichment"
	}
	return source
}

// rateValue parses "N/s", "N/m", "N/h" (1 <= N <= MaxRateN) or "off".
func rateValue(ps *problems, path, value string, def Rate) Rate {
	v := strings.TrimSpace(value)
	if v == "" {
		return def
	}
	if strings.EqualFold(v, "off") {
		return Rate{}
	}
	const form = "write N/s, N/m or N/h (N from 1 to 1000000), such as 10/s, or off"
	n, unit, ok := strings.Cut(v, "/")
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err != nil {
		ps.add(path, "%q is not a rate: %s", value, form)
		return def
	}
	var per time.Duration
	switch strings.TrimSpace(unit) {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		ps.add(path, "%q: unit %q is not s, m or h: %s", value, unit, form)
		return def
	}
	if count < 1 || count > MaxRateN {
		ps.add(path, "%q: N must be from 1 to %d (write off for no limit)", value, MaxRateN)
		return def
	}
	return Rate{N: count, Per: per}
}

func duration(ps *problems, path, value string, def, max time.Duration) time.Duration {
	if value == "" {
		return def
	}
	d, err := time.ParseDuration(value)
	if err != nil {
		ps.add(path, "%q is not a duration (write a number with a unit, such as 300s, 5m or 2h)", value)
		return def
	}
	if d <= 0 {
		ps.add(path, "must be positive, not %s", value)
		return def
	}
	if max > 0 && d > max {
		ps.add(path, "%s is longer than the maximum of %s", value, max)
		return def
	}
	return d
}

func prefixList(ps *problems, path string, values []string) []netip.Prefix {
	var out []netip.Prefix
	for i, v := range values {
		p, err := parsePrefix(v)
		if err != nil {
			ps.add(fmt.Sprintf("%s[%d]", path, i), "%v", err)
			continue
		}
		out = append(out, p)
	}
	return out
}

// parsePrefix accepts a CIDR prefix or a bare address (a /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix such as 10.0.0.0/8 or 2001:db8::/32", s)
		}
		if p.Addr().Is4In6() {
			return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped IPv6 prefix: write the IPv4 form", s)
		}
		if p != p.Masked() {
			return netip.Prefix{}, fmt.Errorf("%q has host bits set (did you mean %s?)", s, p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// checkHostPort accepts host:port with a numeric port; the host may be
// empty (all interfaces), an IP address or a DNS name.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not a host:port address (such as 127.0.0.1:8443 or [::1]:8443)", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || port == "" || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", s, port)
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if !validHostname(host) {
		return fmt.Errorf("%q: %q is neither an IP address nor a host name", s, host)
	}
	return nil
}

func validHostname(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// CheckIssuer reports what is wrong with s as an issuer URL (absolute
// http(s), no query, fragment or trailing slash), or nil.
func CheckIssuer(s string) error { return checkIssuer(s) }

func checkIssuer(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q must be an absolute http or https URL", s)
	case u.Host == "" || u.Opaque != "":
		return fmt.Errorf("%q has no host", s)
	case u.User != nil:
		return fmt.Errorf("must not carry user information")
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("%q must not have a query", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("%q must not have a fragment", s)
	case strings.HasSuffix(s, "/"):
		return fmt.Errorf("%q must not end with \"/\" (write %q)", s, strings.TrimRight(s, "/"))
	}
	if u.Port() != "" {
		if _, err := strconv.ParseUint(u.Port(), 10, 16); err != nil {
			return fmt.Errorf("%q has a bad port", s)
		}
	}
	return nil
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// maskedRaw hides most of a value that may be a phone number, keeping its
// shape visible for the operator ("3460****10").
func maskedRaw(s string) string {
	if len(s) <= 6 {
		return s
	}
	return s[:4] + strings.Repeat("*", len(s)-6) + s[len(s)-2:]
}

// radiusClientName checks a RADIUS client's name; the default is its
// canonical CIDR. A name that reads as a prefix must be the entry's own, so
// that a named entry never merges with another entry's default name.
func radiusClientName(ps *problems, path, name string, cidr netip.Prefix) string {
	if name == "" {
		if cidr.IsValid() {
			return cidr.String()
		}
		return ""
	}
	if len(name) > 64 {
		ps.add(path, "longer than 64 characters")
		return name
	}
	for _, r := range name {
		if r <= ' ' || r > '~' {
			ps.add(path, "%q: use printable ASCII without spaces (such as pgw-madrid-1)", name)
			return name
		}
	}
	if p, err := netip.ParsePrefix(name); err == nil && p != cidr {
		ps.add(path, "%q reads as a CIDR prefix other than the entry's own (%s): choose a plain name", name, cidr)
	}
	return name
}
