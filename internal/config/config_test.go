package config

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

const minimal = `
listen: 127.0.0.1:8443
issuer: https://nv.example.net
data_dir: /var/lib/numbergate
`

func TestParseExample(t *testing.T) {
	cfg, err := Parse([]byte(Example()))
	if err != nil {
		t.Fatalf("Example() does not parse: %v", err)
	}
	want := &Config{
		Listen:         "127.0.0.1:8443",
		Issuer:         "https://nv.example.net",
		AdminListen:    "127.0.0.1:9090",
		DataDir:        "/var/lib/numbergate",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		LogLevel:       slog.LevelInfo,
		Network: Network{
			Order:  []string{"header", "cgnat", "radius", "static"},
			Static: []nv.StaticRoute{{Prefix: netip.MustParsePrefix("192.0.2.10/32"), MSISDN: "+34600000010"}},
			RADIUS: &RADIUS{
				Listen:      "0.0.0.0:1813",
				Clients:     []RADIUSClient{{Name: "pgw-1", CIDR: netip.MustParsePrefix("10.20.0.0/16"), Secret: "change-me", RequireMessageAuthenticator: true}},
				IdleTimeout: 2 * time.Hour,
			},
			CGNAT: &CGNAT{SyslogListen: "0.0.0.0:5514", Files: []string{"/var/log/cgnat/alloc.log"}, Senders: []netip.Prefix{netip.MustParsePrefix("10.50.1.0/24")}},
			HeaderEnrichment: &HeaderEnrichment{
				Proxies: []netip.Prefix{netip.MustParsePrefix("10.30.0.0/16")},
				Headers: []string{"X-Msisdn"},
			},
		},
		Auth:   Auth{TokenLifetime: 300 * time.Second, CodeLifetime: 60 * time.Second, ClockSkew: 5 * time.Second},
		Store:  DefaultStore(),
		Limits: Limits{AuthorizePerAddress: DefaultAuthorizePerAddress, TokenPerClient: DefaultTokenPerClient, APIPerClient: DefaultAPIPerClient},
		Usage:  Usage{Retention: DefaultUsageRetention},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestParseDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal + `
trusted_proxies: [10.1.2.3, "2001:db8::/32"]
network:
  static:
    - prefix: 198.51.100.7
      msisdn: "0034600000011"
    - prefix: 2001:db8:1::/64
      msisdn: 34600000012
  radius:
    listen: :1813
    clients: [{cidr: 10.20.0.1, secret: s3cret}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdminListen != DefaultAdminListen || cfg.LogLevel != slog.LevelInfo {
		t.Errorf("defaults: admin %q level %v", cfg.AdminListen, cfg.LogLevel)
	}
	if got, want := cfg.TrustedProxies, []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("2001:db8::/32")}; !reflect.DeepEqual(got, want) {
		t.Errorf("trusted proxies %v, want %v", got, want)
	}
	if got := cfg.Network.Order; !reflect.DeepEqual(got, []string{"radius", "static"}) {
		t.Errorf("order %v", got)
	}
	if got := cfg.Network.Static[0]; got.MSISDN != "+34600000011" || got.Prefix != netip.MustParsePrefix("198.51.100.7/32") {
		t.Errorf("static[0] %+v", got)
	}
	if got := cfg.Network.Static[1].MSISDN; got != "+34600000012" {
		t.Errorf("static[1] msisdn %q", got)
	}
	if got := cfg.Network.RADIUS.Clients[0]; got.Name != "10.20.0.1/32" || got.RequireMessageAuthenticator {
		t.Errorf("radius client defaults: name %q, require_message_authenticator %v", got.Name, got.RequireMessageAuthenticator)
	}
	if cfg.Network.RADIUS.IdleTimeout != DefaultIdleTimeout {
		t.Errorf("idle timeout %v", cfg.Network.RADIUS.IdleTimeout)
	}
	if cfg.Auth.TokenLifetime != DefaultTokenLifetime || cfg.Auth.CodeLifetime != DefaultCodeLifetime || cfg.Auth.ClockSkew != DefaultClockSkew {
		t.Errorf("auth %+v", cfg.Auth)
	}
	if cfg.Network.CGNAT != nil || cfg.Network.HeaderEnrichment != nil {
		t.Errorf("unconfigured sections are not nil")
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each must appear in the error, in this order
	}{
		{"empty file", ``, []string{"listen: required", "issuer: required", "data_dir: required"}},
		{"bad listen", strings.Replace(minimal, "127.0.0.1:8443", "localhost", 1), []string{`line 2: listen: "localhost" is not a host:port address`}},
		{"bad port", strings.Replace(minimal, "127.0.0.1:8443", "127.0.0.1:99999", 1), []string{`port "99999" is not a number`}},
		{"issuer not http", strings.Replace(minimal, "https://nv.example.net", "ftp://x", 1), []string{"line 3: issuer:", "absolute http or https URL"}},
		{"issuer relative", strings.Replace(minimal, "https://nv.example.net", "nv.example.net", 1), []string{"issuer:", "absolute http or https URL"}},
		{"issuer query", strings.Replace(minimal, "https://nv.example.net", "https://nv.example.net/?a=b", 1), []string{"must not have a query"}},
		{"issuer fragment", strings.Replace(minimal, "https://nv.example.net", `"https://nv.example.net#x"`, 1), []string{"must not have a fragment"}},
		{"issuer trailing slash", strings.Replace(minimal, "https://nv.example.net", "https://nv.example.net/", 1), []string{`must not end with "/" (write "https://nv.example.net")`}},
		{"bad proxy", minimal + "trusted_proxies: [10.0.0.0/8, 10.0.0.1/8, nope]\n", []string{
			`trusted_proxies[1]: "10.0.0.1/8" has host bits set (did you mean 10.0.0.0/8?)`,
			`trusted_proxies[2]: "nope" is not an IP address`}},
		{"log level", minimal + "log_level: loud\n", []string{`line 5: log_level: "loud" is not a log level`}},
		{"bad msisdn", minimal + "network:\n  static:\n    - prefix: 192.0.2.1/32\n      msisdn: \"+34600000001\"\n    - prefix: 192.0.2.2/32\n      msisdn: \"3460\"\n", []string{
			`line 10: network.static[1].msisdn: "3460" is not an E.164 number`}},
		{"msisdn masked", minimal + "network:\n  static:\n    - prefix: 192.0.2.1/32\n      msisdn: \"+3460000000100000000\"\n", []string{
			`network.static[0].msisdn: "+346**************00" is not an E.164 number`}},
		{"static missing", minimal + "network:\n  static:\n    - {}\n", []string{
			"network.static[0].prefix: required", "network.static[0].msisdn: required"}},
		{"static duplicate", minimal + "network:\n  static:\n    - {prefix: 192.0.2.1, msisdn: \"+34600000001\"}\n    - {prefix: 192.0.2.1/32, msisdn: \"+34600000002\"}\n", []string{
			"network.static[1].prefix: 192.0.2.1/32 is already mapped by network.static[0]"}},
		{"radius", minimal + "network:\n  radius:\n    listen: 1813\n    clients:\n      - cidr: 10.20.0.0/16\n      - secret: x\n    idle_timeout: 2\n", []string{
			`network.radius.listen: "1813" is not a host:port`,
			"line 9: network.radius.clients[0].secret: required",
			"line 10: network.radius.clients[1].cidr: required",
			`line 11: network.radius.idle_timeout: "2" is not a duration`}},
		{"radius client names", minimal + "network:\n  radius:\n    listen: :1813\n    clients:\n      - {name: \"pgw 1\", cidr: 10.0.0.1, secret: x}\n      - {name: 10.0.0.1/32, cidr: 10.0.0.2, secret: x}\n      - {name: 10.0.0.3/32, cidr: 10.0.0.3, secret: x}\n", []string{
			`network.radius.clients[0].name: "pgw 1": use printable ASCII without spaces`,
			`network.radius.clients[1].name: "10.0.0.1/32" reads as a CIDR prefix other than the entry's own (10.0.0.2/32)`}},
		{"radius require_message_authenticator", minimal + "network:\n  radius:\n    listen: :1813\n    clients: [{cidr: 10.0.0.1, secret: x, require_message_authenticator: sometimes}]\n", []string{
			"line 8: network.radius.clients: expected bool, found the value sometimes"}},
		{"radius no clients", minimal + "network:\n  radius:\n    listen: :1813\n", []string{"network.radius.clients: required"}},
		{"negative idle", minimal + "network:\n  radius:\n    listen: :1813\n    clients: [{cidr: 10.0.0.1, secret: x}]\n    idle_timeout: -1h\n", []string{"idle_timeout: must be positive"}},
		{"cgnat syslog without senders", minimal + "network:\n  cgnat:\n    syslog_listen: 127.0.0.1:5514\n", []string{
			"network.cgnat.senders: required with syslog_listen"}},
		{"cgnat empty", minimal + "network:\n  cgnat: {}\n", []string{"network.cgnat: set syslog_listen, files or both"}},
		{"enrichment", minimal + "network:\n  header_enrichment:\n    headers: [\"X MSISDN\", X-MSISDN, x-msisdn]\n", []string{
			"line 6: network.header_enrichment.proxies: required",
			"line 7: network.header_enrichment.headers[0]: \"X MSISDN\" is not a valid HTTP header name",
			"network.header_enrichment.headers[2]: x-msisdn is already listed"}},
		{"order", minimal + "network:\n  order: [static, radius, static, magic]\n  static: [{prefix: 192.0.2.1, msisdn: \"+34600000001\"}]\n", []string{
			`network.order[1]: "radius" is not configured`,
			`network.order[2]: "static" is listed twice`,
			`network.order[3]: "magic" is not a network source`}},
		{"order missing source", minimal + "network:\n  order: [radius]\n  static: [{prefix: 192.0.2.1, msisdn: \"+34600000001\"}]\n  radius: {listen: \":1813\", clients: [{cidr: 10.0.0.1, secret: x}]}\n", []string{
			`network.order: "static" is configured but missing from the order`}},
		{"token lifetime", minimal + "auth:\n  token_lifetime: 1h\n  code_lifetime: 0s\n  clock_skew: 2m\n", []string{
			"auth.token_lifetime: 1h is longer than the maximum of 5m0s",
			"auth.code_lifetime: must be positive",
			"auth.clock_skew: 2m is longer than the maximum of 1m0s"}},
		{"unknown top key", minimal + "listne: x\n", []string{`line 5: listne: unknown key "listne" (valid keys here: listen, issuer,`}},
		{"unknown nested key", minimal + "network:\n  radius:\n    listen: :1813\n    secret: x\n    clients: [{cidr: 10.0.0.1, secret: x}]\n", []string{
			`line 8: network.radius.secret: unknown key "secret" (valid keys here: listen, clients, idle_timeout)`}},
		{"wrong type", minimal + "trusted_proxies: 10.0.0.0/8\n", []string{`line 5: trusted_proxies: expected a list, found the value 10.0.0.0/8`}},
		{"mapping for string", strings.Replace(minimal, "127.0.0.1:8443", "{host: x}", 1), []string{"line 2: listen: expected a single value, found a mapping"}},
		{"duplicate key", minimal + "listen: 127.0.0.1:1\n", []string{`line 5: listen: key given twice`}},
		{"syntax", "listen: [\n", []string{"YAML syntax"}},
		{"two documents", minimal + "---\nlisten: x\n", []string{"more than one YAML document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			rest := msg
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error lacks (or misorders) %q:\n%s", w, msg)
				}
				rest = rest[i+len(w):]
			}
			if strings.Contains(msg, "change-me") || strings.Contains(msg, "s3cret") {
				t.Errorf("error carries a secret: %s", msg)
			}
		})
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	_, err := Parse([]byte(`
listen: nowhere
issuer: https://nv.example.net/
trusted_proxies: [300.1.1.1]
bogus: 1
network:
  static:
    - prefix: 192.0.2.10/32
      msisdn: "12"
  radius:
    listen: 0.0.0.0:1813
    clients:
      - cidr: 10.20.0.0/16
        secret: ""
`))
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %T %v, want *Error", err, err)
	}
	wantPaths := []string{"listen", "issuer", "trusted_proxies[0]", "bogus", "network.static[0].msisdn", "network.radius.clients[0].secret", "data_dir"}
	var got []string
	for _, p := range cerr.Problems {
		got = append(got, p.Path)
	}
	if !reflect.DeepEqual(got, wantPaths) {
		t.Errorf("problem paths %q\nwant %q\n%v", got, wantPaths, err)
	}
	if n := strings.Count(err.Error(), "\n"); n != len(wantPaths) {
		t.Errorf("error has %d lines, want one per problem plus a heading:\n%v", n+1, err)
	}
	if cerr.Problems[0].Line != 2 {
		t.Errorf("listen problem on line %d, want 2", cerr.Problems[0].Line)
	}
}

func TestSecretRedacted(t *testing.T) {
	cfg, err := Parse([]byte(minimal + "network:\n  radius:\n    listen: :1813\n    clients: [{cidr: 10.0.0.1, secret: hunter2}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Network.RADIUS.Clients[0]
	if string(c.Secret) != "hunter2" {
		t.Fatalf("secret %q", string(c.Secret))
	}
	for _, s := range []string{
		strings.Join([]string{c.Secret.String()}, ""),
		sprintf("%v", c), sprintf("%+v", c), sprintf("%#v", c), sprintf("%s", c.Secret),
	} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("secret printed: %s", s)
		}
	}
}

func TestEnv(t *testing.T) {
	env := map[string]string{
		EnvListen:      "0.0.0.0:8443",
		EnvAdminListen: "0.0.0.0:9091",
		EnvDataDir:     "/srv/ng",
	}
	getenv := func(k string) string { return env[k] }

	cfg, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if err := ApplyEnv(cfg, getenv); err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "0.0.0.0:8443" || cfg.AdminListen != "0.0.0.0:9091" || cfg.DataDir != "/srv/ng" {
		t.Errorf("after ApplyEnv: %+v", cfg)
	}

	// The environment may supply what the file lacks.
	cfg, err = ParseEnv([]byte("issuer: https://nv.example.net\n"), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "0.0.0.0:8443" || cfg.DataDir != "/srv/ng" {
		t.Errorf("ParseEnv: %+v", cfg)
	}

	// A bad value is reported under the variable's name, and changes nothing.
	env[EnvListen] = "bad"
	cfg, _ = Parse([]byte(minimal))
	err = ApplyEnv(cfg, getenv)
	if err == nil || !strings.Contains(err.Error(), `$NUMBERGATE_LISTEN: "bad" is not a host:port`) {
		t.Errorf("ApplyEnv error %v", err)
	}
	if cfg.Listen != "127.0.0.1:8443" || cfg.DataDir != "/var/lib/numbergate" {
		t.Errorf("failed ApplyEnv changed the config: %+v", cfg)
	}
	if _, err := ParseEnv([]byte(minimal), getenv); err == nil || !strings.Contains(err.Error(), "$NUMBERGATE_LISTEN") {
		t.Errorf("ParseEnv error %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "numbergate.yaml")
	data := strings.Replace(minimal, "/var/lib/numbergate", "data", 1)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "data"); cfg.DataDir != want {
		t.Errorf("data dir %q, want %q", cfg.DataDir, want)
	}
	cfg, err = LoadEnv(path, func(k string) string {
		if k == EnvDataDir {
			return "rel"
		}
		return ""
	})
	if err != nil || cfg.DataDir != "rel" {
		t.Errorf("LoadEnv data dir %q, %v", cfg.DataDir, err)
	}

	if err := os.WriteFile(path, []byte("listen: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), "invalid configuration "+path+" (") {
		t.Errorf("Load error does not name the file: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
