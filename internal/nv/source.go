package nv

// Network source names: as written in network.order, recorded in
// Identity.Source and AccessToken.Source for audit, and used as metric
// label values.
const (
	SourceHeader  = "header"
	SourceCGNAT   = "cgnat"
	SourceRADIUS  = "radius"
	SourceStatic  = "static"
	SourceSandbox = "sandbox"
)
