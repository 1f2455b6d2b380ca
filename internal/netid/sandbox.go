package netid

import (
	"context"
	"strings"

	"github.com/numbergate/numbergate/internal/nv"
)

// SandboxDefaultNumber is the simulated device number of the sandbox when
// /authorize carries no tel: login_hint.
const SandboxDefaultNumber nv.PhoneNumber = "+34600000000"

// SandboxOffNetworkPrefix starts the simulated numbers of devices the
// network does not identify (as if on Wi-Fi): /authorize answers
// error=access_denied. +999 is a country code the ITU leaves unassigned,
// so no real number is ever taken for one.
const SandboxOffNetworkPrefix = "+999"

// Sandbox simulates the mobile network for app developers: the device's
// number is the login_hint tel:+E164, or Default when there is no hint.
// It must never be part of a production chain.
type Sandbox struct {
	// Default is used when login_hint is absent (SandboxDefaultNumber when
	// empty).
	Default nv.PhoneNumber
}

// NewSandbox returns a sandbox source with SandboxDefaultNumber.
func NewSandbox() *Sandbox { return &Sandbox{Default: SandboxDefaultNumber} }

// Name implements Source.
func (s *Sandbox) Name() string { return nv.SourceSandbox }

// Resolve implements nv.Resolver. A malformed login_hint is an error
// wrapping ErrBadLoginHint; an ipport: or operatortoken: hint says nothing
// about the simulated number, so the default is used.
func (s *Sandbox) Resolve(_ context.Context, c nv.Connection) (nv.Identity, error) {
	n := s.Default
	if n == "" {
		n = SandboxDefaultNumber
	}
	if c.LoginHint != "" {
		h, err := ParseLoginHint(c.LoginHint)
		if err != nil {
			return nv.Identity{}, err
		}
		if h.Kind == HintTel {
			n = h.Phone
		}
		if strings.HasPrefix(string(n), SandboxOffNetworkPrefix) {
			return nv.Identity{}, nv.ErrUnknownDevice
		}
	}
	return nv.Identity{MSISDN: n, Method: nv.AuthNetwork, Source: nv.SourceSandbox}, nil
}
