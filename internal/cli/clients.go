package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/go-jose/go-jose/v4"
	"github.com/numbergate/numbergate/internal/nv"
)

// MaxClientIDLength bounds a client id.
const MaxClientIDLength = 128

// maxQuotaPerDay bounds --quota-per-day.
const maxQuotaPerDay = 1_000_000_000

func quotaText(n int64) string {
	if n == 0 {
		return "no daily quota"
	}
	return fmt.Sprintf("quota %d API calls per UTC day", n)
}

// maxJWKSFile bounds the JWKS file read by `clients add`.
const maxJWKSFile = 1 << 20

const clientsUsage = `usage: numbergate clients <subcommand> --config FILE [flags]

subcommands:
  add     onboard a client (or replace one with --replace)
  list    list onboarded clients
  remove  remove a client

Run "numbergate clients <subcommand> -h" for its flags.
`

// Clients runs `numbergate clients add|list|remove`. args start with the
// subcommand. A request for help returns flag.ErrHelp.
func (c *CLI) Clients(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, args, err := subcommand(args, "clients", clientsUsage, stdout)
	if err != nil {
		return err
	}
	switch sub {
	case "add":
		return c.clientsAdd(ctx, args, stdout, stderr)
	case "list":
		return c.clientsList(ctx, args, stdout, stderr)
	case "remove":
		return c.clientsRemove(ctx, args, stdout, stderr)
	}
	return fmt.Errorf("clients: unknown subcommand %q (use add, list or remove; numbergate clients -h)", sub)
}

func (c *CLI) clientsAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("clients add", "--config FILE --client-id ID --redirect-uri URI [--redirect-uri URI]... --jwks FILE --scope SCOPES --purpose dpv:NAME [--purpose ...] [--require-pkce] [--quota-per-day N] [--replace]", stdout)
	configPath := fs.String("config", "", "configuration `FILE` (as for numbergate serve)")
	id := fs.String("client-id", "", "the client's `ID` (printable ASCII, no spaces, at most 128 characters)")
	var redirects, scopes, purposes stringList
	fs.Var(&redirects, "redirect-uri", "an allowed redirect `URI`: https, http on a loopback host, or a private-use scheme such as com.example.app:/cb (RFC 8252); no fragment; repeat for several")
	jwksPath := fs.String("jwks", "", "`FILE` holding the client's public JSON Web Key Set (EC P-256, RSA >= 2048 or Ed25519; no private keys)")
	fs.Var(&scopes, "scope", "space-separated `SCOPES` the client may request; must include openid (offered: "+strings.Join(nv.Scopes, " ")+")")
	fs.Var(&purposes, "purpose", "a `PURPOSE` the client may declare: dpv: and a name, such as dpv:FraudPreventionAndDetection; repeat for several")
	requirePKCE := fs.Bool("require-pkce", false, "require PKCE (S256) on every authorization request of this client")
	quota := fs.Int64("quota-per-day", 0, "cap the client's Number Verification API calls per UTC day at `N` (0: no quota); beyond it the API answers 429 QUOTA_EXCEEDED")
	replace := fs.Bool("replace", false, "replace the client if the id is taken")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}

	var problems, warnings []string
	if len(rest) > 0 {
		problems = append(problems, fmt.Sprintf("unexpected argument %q", rest[0]))
	}
	if *configPath == "" {
		problems = append(problems, "--config is required")
	}
	if err := checkClientID(*id); err != nil {
		problems = append(problems, "--client-id: "+err.Error())
	}
	if *quota < 0 || *quota > maxQuotaPerDay {
		problems = append(problems, fmt.Sprintf("--quota-per-day %d: must be from 0 (no quota) to %d", *quota, maxQuotaPerDay))
	}

	var uris []string
	if len(redirects) == 0 {
		problems = append(problems, "--redirect-uri is required (at least one)")
	}
	for _, u := range redirects {
		w, err := checkRedirectURI(u)
		if err != nil {
			problems = append(problems, fmt.Sprintf("--redirect-uri %q: %v", u, err))
			continue
		}
		if w != "" {
			warnings = append(warnings, fmt.Sprintf("--redirect-uri %q: %s", u, w))
		}
		if !slices.Contains(uris, u) {
			uris = append(uris, u)
		}
	}

	var jwks []byte
	if *jwksPath == "" {
		problems = append(problems, "--jwks is required (the client's public key set)")
	} else if data, err := readLimited(*jwksPath, maxJWKSFile); err != nil {
		problems = append(problems, "--jwks: "+err.Error())
	} else {
		pub, ws, ps := checkClientJWKS(data)
		for _, w := range ws {
			warnings = append(warnings, "--jwks "+w)
		}
		for _, p := range ps {
			problems = append(problems, fmt.Sprintf("--jwks %s: %s", *jwksPath, p))
		}
		jwks = pub
	}

	scopeList, ps, ws := checkScopes(scopes)
	problems = append(problems, ps...)
	warnings = append(warnings, ws...)
	purposeList, ps := checkPurposes(purposes)
	problems = append(problems, ps...)

	for _, w := range warnings {
		warn(stderr, "%s", w)
	}
	if len(problems) > 0 {
		return problemsError("clients add", problems)
	}

	_, st, err := c.openStore(ctx, *configPath)
	if err != nil {
		return err
	}
	defer st.Close()

	client := nv.Client{
		ID:           *id,
		RedirectURIs: uris,
		JWKS:         jwks,
		Scopes:       scopeList,
		Purposes:     purposeList,
		RequirePKCE:  *requirePKCE,
		QuotaPerDay:  *quota,
		CreatedAt:    c.now().UTC(),
	}
	existing, err := st.Client(ctx, *id)
	switch {
	case err == nil && !*replace:
		return fmt.Errorf("clients add: a client with id %q already exists (add --replace to overwrite it)", *id)
	case err == nil:
		client.CreatedAt = existing.CreatedAt
	case !errors.Is(err, nv.ErrNotFound):
		return fmt.Errorf("clients add: reading client %q: %w", *id, err)
	}
	if err := st.PutClient(ctx, client); err != nil {
		return fmt.Errorf("clients add: storing client %q: %w", *id, err)
	}
	verb := "added"
	if existing.ID != "" {
		verb = "replaced"
	}
	fmt.Fprintf(stdout, "%s client %q: scopes %s; purposes %s; %d redirect URI(s); PKCE %s; %s\n",
		verb, client.ID, strings.Join(client.Scopes, " "), strings.Join(client.Purposes, " "), len(client.RedirectURIs), yesNo(client.RequirePKCE, "required", "optional"), quotaText(client.QuotaPerDay))
	return nil
}

func (c *CLI) clientsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("clients list", "--config FILE [--json]", stdout)
	configPath := fs.String("config", "", "configuration `FILE` (as for numbergate serve)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("clients list", rest, *configPath); err != nil {
		return err
	}
	_, st, err := c.openStore(ctx, *configPath)
	if err != nil {
		return err
	}
	defer st.Close()
	clients, err := st.Clients(ctx)
	if err != nil {
		return fmt.Errorf("clients list: %w", err)
	}
	sort.Slice(clients, func(i, j int) bool { return clients[i].ID < clients[j].ID })

	if *asJSON {
		type jsonClient struct {
			ID           string   `json:"client_id"`
			RedirectURIs []string `json:"redirect_uris"`
			Scopes       []string `json:"scopes"`
			Purposes     []string `json:"purposes"`
			RequirePKCE  bool     `json:"require_pkce"`
			QuotaPerDay  int64    `json:"quota_per_day"`
			KeyIDs       []string `json:"key_ids"`
			CreatedAt    string   `json:"created_at"`
		}
		out := []jsonClient{}
		for _, cl := range clients {
			out = append(out, jsonClient{cl.ID, nonNil(cl.RedirectURIs), nonNil(cl.Scopes), nonNil(cl.Purposes), cl.RequirePKCE, cl.QuotaPerDay, nonNil(keyIDs(cl.JWKS)), formatTime(cl.CreatedAt)})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT ID\tREDIRECT URIS\tSCOPES\tPURPOSES\tPKCE\tQUOTA/DAY\tKEYS\tCREATED")
	for _, cl := range clients {
		kids := keyIDs(cl.JWKS)
		keys := fmt.Sprint(len(kids))
		if len(kids) > 0 && !slices.Contains(kids, "") {
			keys = strings.Join(kids, ",")
		}
		quota := "-"
		if cl.QuotaPerDay > 0 {
			quota = fmt.Sprint(cl.QuotaPerDay)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cl.ID, strings.Join(cl.RedirectURIs, ","), strings.Join(cl.Scopes, " "),
			strings.Join(cl.Purposes, " "), yesNo(cl.RequirePKCE, "required", "optional"), quota, keys, formatTime(cl.CreatedAt))
	}
	return tw.Flush()
}

func (c *CLI) clientsRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("clients remove", "--config FILE --client-id ID", stdout)
	configPath := fs.String("config", "", "configuration `FILE` (as for numbergate serve)")
	id := fs.String("client-id", "", "the `ID` of the client to remove")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("clients remove", rest, *configPath); err != nil {
		return err
	}
	if *id == "" {
		return errors.New("clients remove: --client-id is required")
	}
	_, st, err := c.openStore(ctx, *configPath)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.DeleteClient(ctx, *id); errors.Is(err, nv.ErrNotFound) {
		return fmt.Errorf("clients remove: no client with id %q", *id)
	} else if err != nil {
		return fmt.Errorf("clients remove: %w", err)
	}
	fmt.Fprintf(stdout, "removed client %q\n", *id)
	return nil
}

func noArgs(cmd string, rest []string, configPath string) error {
	if len(rest) > 0 {
		return fmt.Errorf("%s: unexpected argument %q", cmd, rest[0])
	}
	if configPath == "" {
		return fmt.Errorf("%s: --config is required", cmd)
	}
	return nil
}

// checkClientID accepts 1 to MaxClientIDLength visible ASCII characters
// (RFC 6749 appendix A.1 VSCHAR, without the space).
func checkClientID(id string) error {
	if id == "" {
		return errors.New("required")
	}
	if len(id) > MaxClientIDLength {
		return fmt.Errorf("%d characters, at most %d", len(id), MaxClientIDLength)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return fmt.Errorf("%q has a character that is not printable ASCII (spaces included) at position %d", id, i+1)
		}
	}
	return nil
}

// checkRedirectURI accepts the redirect URIs of RFC 8252 and nothing else:
// https with a host; http only on a loopback host (127.0.0.0/8, [::1],
// localhost: native apps listening on the device, RFC 8252 section 7.3);
// and private-use schemes in reverse-domain form such as
// com.example.app:/callback (RFC 8252 section 7.1). The URI is absolute,
// without fragment (RFC 6749 section 3.1.2), whitespace or user information.
// Schemes that run or read something on the device (javascript:, data:,
// file:, ...) are refused by name.
func checkRedirectURI(s string) (warning string, err error) {
	if strings.ContainsAny(s, " \t\r\n") {
		return "", errors.New("must not contain whitespace")
	}
	if i := strings.IndexByte(s, ':'); i > 0 {
		if scheme := strings.ToLower(s[:i]); slices.Contains(dangerousSchemes, scheme) {
			return "", fmt.Errorf("the %s: scheme is never a redirect target (use https, http on loopback, or a private-use scheme such as com.example.app)", scheme)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("not a valid URI")
	}
	if !u.IsAbs() {
		return "", errors.New("not an absolute URI (it needs a scheme, such as https://)")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return "", errors.New("must not have a fragment (RFC 6749 section 3.1.2)")
	}
	if u.User != nil {
		return "", errors.New("must not carry user information (user@ or user:password@)")
	}
	if !strings.HasPrefix(s, u.Scheme+":") { // url.Parse lowered it

		return "", fmt.Errorf("write the scheme in lower case (%s:): redirect URIs are compared as exact strings", strings.ToLower(u.Scheme))
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" || u.Hostname() == "" {
			return "", errors.New("has no host")
		}
		return "", nil
	case "http":
		if u.Host == "" || u.Hostname() == "" {
			return "", errors.New("has no host")
		}
		if !isLoopback(u.Hostname()) {
			return "", errors.New("plain http is accepted only on a loopback host (127.0.0.1, [::1], localhost; RFC 8252 section 7.3): the authorization code would travel unencrypted; use https")
		}
		if u.Hostname() == "localhost" || strings.HasSuffix(u.Hostname(), ".localhost") {
			return "a loopback IP literal (127.0.0.1 or [::1]) is safer than localhost, which a device may resolve elsewhere (RFC 8252 section 8.3)", nil
		}
		return "", nil
	}
	if !reverseDomainScheme(u.Scheme) {
		return "", fmt.Errorf("scheme %q is neither https, http on loopback, nor a private-use scheme in reverse-domain form such as com.example.app (RFC 8252 section 7.1)", u.Scheme)
	}
	return "", nil
}

// dangerousSchemes are refused by name with their own message.
var dangerousSchemes = []string{"javascript", "data", "file", "vbscript", "about", "blob", "filesystem", "view-source", "jar"}

// reverseDomainScheme reports whether scheme is a reverse domain name of at
// least two labels (com.example, com.example.app), each of letters, digits
// and hyphens, not starting or ending with a hyphen.
func reverseDomainScheme(scheme string) bool {
	labels := strings.Split(scheme, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// checkScopes splits the --scope values and checks them against nv.Scopes.
func checkScopes(values []string) (scopes, problems, warnings []string) {
	if len(values) == 0 {
		return nil, []string{fmt.Sprintf("--scope is required (such as %q)", nv.ScopeOpenID+" "+nv.ScopeVerify)}, nil
	}
	for _, v := range values {
		for _, s := range nv.SplitScope(v) {
			switch {
			case strings.HasPrefix(s, nv.PurposePrefix):
				problems = append(problems, fmt.Sprintf("--scope %q is a purpose: give it with --purpose", s))
			case !slices.Contains(nv.Scopes, s):
				problems = append(problems, fmt.Sprintf("--scope %q is not a scope numbergate offers (offered: %s)", s, strings.Join(nv.Scopes, " ")))
			case !slices.Contains(scopes, s):
				scopes = append(scopes, s)
			}
		}
	}
	if !slices.Contains(scopes, nv.ScopeOpenID) {
		problems = append(problems, "--scope must include openid (the flow is OpenID Connect)")
	} else if len(scopes) == 1 && len(problems) == 0 {
		warnings = append(warnings, "--scope has only openid: the client will be able to call no API")
	}
	return scopes, problems, warnings
}

// checkPurposes requires at least one dpv: purpose, each "dpv:" followed by
// a name of letters and digits. The wildcard dpv:* (nv.AnyPurpose) is
// refused: it exists only for the sandbox's demo client.
func checkPurposes(values []string) (purposes, problems []string) {
	if len(values) == 0 {
		return nil, []string{"--purpose is required (at least one, such as dpv:FraudPreventionAndDetection)"}
	}
	for _, p := range values {
		name, ok := strings.CutPrefix(p, nv.PurposePrefix)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("--purpose %q must start with %q (such as dpv:FraudPreventionAndDetection)", p, nv.PurposePrefix))
		case name == "":
			problems = append(problems, fmt.Sprintf("--purpose %q has no name after %q", p, nv.PurposePrefix))
		case name == "*":
			problems = append(problems, fmt.Sprintf("--purpose %q: the wildcard exists only for the sandbox's demo client; name each purpose the client declares, such as dpv:FraudPreventionAndDetection", p))
		case !alnum(name):
			problems = append(problems, fmt.Sprintf("--purpose %q: the name after %q must be letters and digits", p, nv.PurposePrefix))
		case !slices.Contains(purposes, p):
			purposes = append(purposes, p)
		}
	}
	return purposes, problems
}

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a key set", path, limit)
	}
	return data, nil
}

// keyIDs lists the kid of each key in a stored JWKS ("" for a key without).
func keyIDs(jwks []byte) []string {
	var set jose.JSONWebKeySet
	if json.Unmarshal(jwks, &set) != nil {
		return nil
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	return kids
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
