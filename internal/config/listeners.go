package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// ProxyProtocol configures the PROXY protocol (v1 and v2) on the public
// listener: the listed peers (load balancers) must open every connection
// with a PROXY header, which gives the device's address and port; anyone
// else must not send one.
type ProxyProtocol struct {
	// Trusted are the peers that must send a PROXY header.
	Trusted []netip.Prefix
}

type rawProxyProtocol struct {
	Trusted []string `yaml:"trusted"`
}

func proxyProtocol(ps *problems, raw *rawProxyProtocol) *ProxyProtocol {
	if raw == nil {
		return nil
	}
	if len(raw.Trusted) == 0 {
		ps.add("proxy_protocol.trusted", "required: the load balancers' addresses or CIDR prefixes (they must send a PROXY header; nobody else may)")
	}
	return &ProxyProtocol{Trusted: prefixList(ps, "proxy_protocol.trusted", raw.Trusted)}
}

// crossChecks adds the problems that involve several sections.
func crossChecks(ps *problems, cfg *Config) {
	if cfg.Network.CGNAT != nil && cfg.Network.RADIUS == nil {
		ps.add("network.cgnat", "needs network.radius: a CGNAT allocation maps to a private address, which is resolved to a number through its RADIUS session")
	}
}

// Warnings are things in a valid configuration that are probably not what
// the operator meant; serve logs them at start.
func (c *Config) Warnings() []string {
	var w []string
	if c.Network.CGNAT != nil && len(c.TrustedProxies) > 0 && c.ProxyProtocol == nil {
		w = append(w, fmt.Sprintf("network.cgnat with trusted_proxies but no proxy_protocol: behind a proxy the device's source port is unknown "+
			"(X-Forwarded-For carries none), so CGNAT identifies only devices that connect directly; have the load balancer send the PROXY protocol "+
			"and list it under proxy_protocol.trusted (docs/configuration.md)"))
	}
	if c.TLS != nil && strings.HasPrefix(c.Issuer, "http://") {
		w = append(w, "tls is set but the issuer is http://: clients will address assertions and requests to a URL the server does not serve; write the issuer as https://")
	}
	return w
}

// TLS names a certificate and its key, PEM files read at start and again
// on SIGHUP or when they change. Load makes relative paths relative to the
// configuration file's directory.
type TLS struct {
	// CertFile holds the certificate, then any intermediates.
	CertFile string
	// KeyFile holds the private key.
	KeyFile string
}

type rawTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

func tlsFiles(ps *problems, path string, raw *rawTLS) *TLS {
	if raw == nil {
		return nil
	}
	if strings.TrimSpace(raw.CertFile) == "" {
		ps.add(path+".cert_file", "required: the PEM file of the certificate (then its intermediates)")
	}
	if strings.TrimSpace(raw.KeyFile) == "" {
		ps.add(path+".key_file", "required: the PEM file of the certificate's private key")
	}
	return &TLS{CertFile: raw.CertFile, KeyFile: raw.KeyFile}
}

func (c *Config) resolveTLSFiles(file string) {
	if file == "" {
		return
	}
	for _, t := range []*TLS{c.TLS, c.AdminTLS} {
		if t == nil {
			continue
		}
		for _, p := range []*string{&t.CertFile, &t.KeyFile} {
			if !filepath.IsAbs(*p) {
				*p = filepath.Join(filepath.Dir(file), *p)
			}
		}
	}
}
