package netid

import (
	"context"
	"log/slog"
	"net/textproto"

	"github.com/numbergate/numbergate/internal/nv"
)

// Header resolves the device from header enrichment: the number an
// operator's enrichment proxy inserted (X-MSISDN and similar). It reads only
// nv.Connection.Enrichment, which the HTTP edge fills (see Enrichment) only
// when the TCP peer is a configured enrichment proxy; the raw request
// headers are never consulted here.
type Header struct {
	names []string
	log   *slog.Logger
}

// NewHeader returns a Header source for the given header names, tried in
// order. logger may be nil.
func NewHeader(names []string, logger *slog.Logger) *Header {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Header{log: logger}
	for _, n := range names {
		h.names = append(h.names, textproto.CanonicalMIMEHeaderKey(n))
	}
	return h
}

// Name implements Source.
func (h *Header) Name() string { return nv.SourceHeader }

// Resolve implements nv.Resolver. The first configured header holding a
// valid number wins; a value that is not an international number is
// skipped (and logged without its value).
func (h *Header) Resolve(ctx context.Context, c nv.Connection) (nv.Identity, error) {
	for _, name := range h.names {
		v, ok := c.Enrichment[name]
		if !ok || v == "" {
			continue
		}
		n, err := nv.NormalizeMSISDN(v)
		if err != nil {
			h.log.WarnContext(ctx, "enrichment header is not an international number", "header", name)
			continue
		}
		return nv.Identity{MSISDN: n, Method: nv.AuthNetwork, Source: nv.SourceHeader}, nil
	}
	return nv.Identity{}, nv.ErrUnknownDevice
}
