package config

// Example returns a commented example configuration that documents every
// key. It is valid as it stands (Parse accepts it), apart from the
// placeholder secret an operator must change.
func Example() string { return example }

const example = `# numbergate configuration (numbergate serve --config FILE).
# Unknown keys are errors; every problem is reported at once.
# Environment overrides: NUMBERGATE_LISTEN, NUMBERGATE_ADMIN_LISTEN,
# NUMBERGATE_DATA_DIR.

# Public listener: the authorization server and the API (required).
listen: 127.0.0.1:8443
# The issuer URL clients see (required): absolute http(s), no query,
# fragment or trailing slash. Discovery is at {issuer}/.well-known/openid-configuration.
issuer: https://nv.example.net
# Admin listener: /metrics, /healthz, /readyz, /debug/pprof/ (default 127.0.0.1:9090).
admin_listen: 127.0.0.1:9090
# The embedded SQLite store lives here (required). A relative path is
# relative to this file's directory.
data_dir: /var/lib/numbergate
# The store: sqlite (default, the file in data_dir, one node) or postgres
# (several nodes sharing one database). $NUMBERGATE_STORE_DSN overrides dsn.
# store:
#   driver: postgres
#   dsn: postgres://numbergate@db.example.net:5432/numbergate?sslmode=verify-full
#   max_conns: 16              # pool size per node (default 16)
#   statement_timeout: 5s      # longer and the node answers "unavailable" (default 5s)
#   conn_max_lifetime: 30m     # connections are recycled (default 30m)
#   key_activation_delay: 10m  # a rotated key is published this long before use (default 10m)
# Peers whose X-Forwarded-For is believed (CIDR prefixes; a bare address
# means /32 or /128). Anyone else is identified by the TCP peer address.
trusted_proxies: [10.0.0.0/8]
# debug, info (default), warn or error.
log_level: info

# Rate limits of the public listener, per node (N nodes behind a load
# balancer let through N times as much). N/s, N/m or N/h (bursts of up to
# N), or off. A client's daily API quota is set with
# numbergate clients add --quota-per-day N.
limits:
  authorize_per_address: 10/s  # /authorize per device address (IPv6 per /64) (default 10/s)
  token_per_client: 200/s      # /token per client (default 200/s)
  api_per_client: 500/s        # API calls per client (default 500/s)

# Usage records for billing: one per API call and per token issued (client,
# purpose, scopes, result, source; never the number). Export them with
# numbergate usage --config FILE --from T --to T.
usage:
  retention: 2160h             # how long records are kept (default 2160h, 90 days)

auth:
  token_lifetime: 300s   # access token lifetime, at most 300s (default 300s)
  code_lifetime: 60s     # authorization code lifetime (default 60s)
  clock_skew: 5s         # tolerance for clients' clocks on iat/nbf/exp (default 5s, at most 1m)

# Network-based authentication: where the number behind a connection comes from.
network:
  # Sources in the order they are tried. Default: header, cgnat, radius,
  # static (only the configured ones). Every configured source must be listed.
  order: [header, cgnat, radius, static]

  # A fixed map of address prefixes to numbers.
  static:
    - prefix: 192.0.2.10/32
      msisdn: "+34600000010"

  # RADIUS accounting from the packet gateways (GGSN/PGW/SMF).
  radius:
    listen: 0.0.0.0:1813         # UDP
    clients:                     # the gateways allowed to send, by source address
      - name: pgw-1              # names its sessions; only it may stop or purge
                                 # them (default: the cidr)
        cidr: 10.20.0.0/16
        secret: "change-me"      # the shared secret set on the gateway (required)
        require_message_authenticator: true  # drop packets without one (RFC 3579)
    idle_timeout: 2h             # a session with no update for this long expires

  # Carrier NAT port-block allocations (public IP:port -> private IP).
  cgnat:
    syslog_listen: 0.0.0.0:5514  # UDP syslog (optional)
    senders: [10.50.1.0/24]      # the NATs (required with syslog_listen)
    files: [/var/log/cgnat/alloc.log]

  # Header enrichment by the operator's HTTP proxies.
  header_enrichment:
    proxies: [10.30.0.0/16]      # only these TCP peers may set the headers
    headers: [X-MSISDN]
`
