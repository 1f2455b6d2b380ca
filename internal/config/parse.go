package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The file as written: strings everywhere, so that validation can report a
// bad value with its path instead of failing the whole decode.
type rawConfig struct {
	Listen         string            `yaml:"listen"`
	Issuer         string            `yaml:"issuer"`
	AdminListen    string            `yaml:"admin_listen"`
	DataDir        string            `yaml:"data_dir"`
	TrustedProxies []string          `yaml:"trusted_proxies"`
	LogLevel       string            `yaml:"log_level"`
	Network        *rawNetwork       `yaml:"network"`
	Auth           *rawAuth          `yaml:"auth"`
	Store          *rawStore         `yaml:"store"`
	Limits         *rawLimits        `yaml:"limits"`
	Usage          *rawUsage         `yaml:"usage"`
	ProxyProtocol  *rawProxyProtocol `yaml:"proxy_protocol"`
	TLS            *rawTLS           `yaml:"tls"`
	AdminTLS       *rawTLS           `yaml:"admin_tls"`
}

type rawNetwork struct {
	Order            []string    `yaml:"order"`
	Static           []rawStatic `yaml:"static"`
	RADIUS           *rawRADIUS  `yaml:"radius"`
	CGNAT            *rawCGNAT   `yaml:"cgnat"`
	HeaderEnrichment *rawEnrich  `yaml:"header_enrichment"`
}

type rawStatic struct {
	Prefix string `yaml:"prefix"`
	MSISDN string `yaml:"msisdn"`
}

type rawRADIUS struct {
	Listen      string            `yaml:"listen"`
	Clients     []rawRADIUSClient `yaml:"clients"`
	IdleTimeout string            `yaml:"idle_timeout"`
}

type rawRADIUSClient struct {
	Name                        string `yaml:"name"`
	CIDR                        string `yaml:"cidr"`
	Secret                      string `yaml:"secret"`
	RequireMessageAuthenticator bool   `yaml:"require_message_authenticator"`
}

type rawCGNAT struct {
	SyslogListen string   `yaml:"syslog_listen"`
	Files        []string `yaml:"files"`
	Senders      []string `yaml:"senders"`
}

type rawEnrich struct {
	Proxies []string `yaml:"proxies"`
	Headers []string `yaml:"headers"`
}

type rawUsage struct {
	Retention string `yaml:"retention"`
}

type rawLimits struct {
	AuthorizePerAddress string `yaml:"authorize_per_address"`
	TokenPerClient      string `yaml:"token_per_client"`
	APIPerClient        string `yaml:"api_per_client"`
}

type rawAuth struct {
	TokenLifetime string `yaml:"token_lifetime"`
	CodeLifetime  string `yaml:"code_lifetime"`
	ClockSkew     string `yaml:"clock_skew"`
}

// rawTypes lets an unknown-key error list the keys valid at that place.
var rawTypes = map[string]reflect.Type{}

func init() {
	for _, v := range []any{rawConfig{}, rawNetwork{}, rawStatic{}, rawRADIUS{}, rawRADIUSClient{}, rawCGNAT{}, rawEnrich{}, rawAuth{}, rawStore{}, rawLimits{}, rawUsage{}, rawProxyProtocol{}, rawTLS{}} {
		t := reflect.TypeOf(v)
		rawTypes[t.String()] = t
	}
}

// Load reads and validates the configuration file at path. A relative
// data_dir is taken relative to the file's directory. The environment is
// not consulted; see LoadEnv.
func Load(path string) (*Config, error) { return LoadEnv(path, nil) }

// LoadEnv is Load with the environment overrides of ApplyEnv applied before
// validation, so an environment variable may also supply a required value.
// getenv is usually os.Getenv; nil means no environment.
func LoadEnv(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	return parse(data, path, getenv)
}

// Parse validates a configuration held in memory. data_dir is used as
// written.
func Parse(data []byte) (*Config, error) { return parse(data, "", nil) }

// ParseEnv is Parse with the environment overrides of ApplyEnv applied
// before validation.
func ParseEnv(data []byte, getenv func(string) string) (*Config, error) {
	return parse(data, "", getenv)
}

// ApplyEnv overrides cfg with the environment: NUMBERGATE_LISTEN,
// NUMBERGATE_ADMIN_LISTEN and NUMBERGATE_DATA_DIR (an empty or unset
// variable changes nothing). It validates what it applies and leaves cfg
// unchanged when it returns an error.
func ApplyEnv(cfg *Config, getenv func(string) string) error {
	if getenv == nil {
		return nil
	}
	ps := &problems{}
	next := *cfg
	if v := getenv(EnvListen); v != "" {
		if err := checkHostPort(v); err != nil {
			ps.add("$"+EnvListen, "%v", err)
		}
		next.Listen = v
	}
	if v := getenv(EnvAdminListen); v != "" {
		if err := checkHostPort(v); err != nil {
			ps.add("$"+EnvAdminListen, "%v", err)
		}
		next.AdminListen = v
	}
	if v := getenv(EnvDataDir); v != "" {
		next.DataDir = v
	}
	if len(ps.list) > 0 {
		return &Error{Problems: ps.list}
	}
	*cfg = next
	return nil
}

func parse(data []byte, file string, getenv func(string) string) (*Config, error) {
	fail := func(ps []Problem) (*Config, error) { return nil, &Error{File: file, Problems: ps} }

	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fail([]Problem{syntaxProblem(err)})
	}
	lines := map[string]int{}
	keys := map[lineKey]string{}
	values := map[int]string{}
	indexNode(&root, "", lines, keys, values)

	var raw rawConfig
	var decodeProblems []Problem
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(&raw)
	var terr *yaml.TypeError
	switch {
	case err == nil, errors.Is(err, io.EOF):
	case errors.As(err, &terr):
		for _, msg := range terr.Errors {
			decodeProblems = append(decodeProblems, typeProblem(msg, keys, values))
		}
	default:
		return fail([]Problem{syntaxProblem(err)})
	}
	if err == nil {
		var extra yaml.Node
		if dec.Decode(&extra) != io.EOF {
			decodeProblems = append(decodeProblems, Problem{Line: extra.Line, Message: "the file holds more than one YAML document"})
		}
	}

	ps := &problems{lines: lines}
	cfg := validate(&raw, getenv, ps)
	all := decodeProblems
	for _, p := range ps.list {
		if !coveredBy(p.Path, decodeProblems) {
			all = append(all, p)
		}
	}
	if len(all) > 0 {
		sort.SliceStable(all, func(i, j int) bool {
			// Problems with a line first, in file order; the rest (missing keys) after.
			li, lj := all[i].Line, all[j].Line
			if li == 0 || lj == 0 {
				return li != 0 && lj == 0
			}
			return li < lj
		})
		return fail(all)
	}
	cfg.resolveTLSFiles(file)
	if file != "" && getenv != nil && getenv(EnvDataDir) != "" {
		return cfg, nil
	}
	if file != "" && !filepath.IsAbs(cfg.DataDir) {
		cfg.DataDir = filepath.Join(filepath.Dir(file), cfg.DataDir)
	}
	return cfg, nil
}

// coveredBy reports whether a validation problem at path is a consequence
// of a decode problem at the same place or above it.
func coveredBy(path string, decodeProblems []Problem) bool {
	for _, d := range decodeProblems {
		if d.Path == "" {
			continue
		}
		if path == d.Path || strings.HasPrefix(path, d.Path+".") || strings.HasPrefix(path, d.Path+"[") {
			return true
		}
	}
	return false
}

type lineKey struct {
	line int
	key  string
}

// indexNode records, for every YAML path, the line it is on; for every
// mapping key, its path; and for every line, the shallowest value on it.
func indexNode(n *yaml.Node, path string, lines map[string]int, keys map[lineKey]string, values map[int]string) {
	if n == nil {
		return
	}
	if _, ok := values[n.Line]; !ok && path != "" {
		values[n.Line] = path
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			indexNode(c, path, lines, keys, values)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if _, ok := lines[p]; !ok {
				lines[p] = k.Line
			}
			keys[lineKey{k.Line, k.Value}] = p
			indexNode(v, p, lines, keys, values)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			lines[p] = c.Line
			indexNode(c, p, lines, keys, values)
		}
	}
}

var (
	lineRE     = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownRE  = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
	dupFieldRE = regexp.MustCompile(`^(?:field (\S+) already set in type \S+|mapping key "(.*)" already defined at line \d+)$`)
	typeErrRE  = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")
)

func syntaxProblem(err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Line: line, Message: "YAML syntax: " + m[2]}
	}
	return Problem{Message: "YAML syntax: " + msg}
}

// typeProblem turns one of yaml's unmarshal messages into a Problem with a
// path and an operator's wording.
func typeProblem(msg string, keys map[lineKey]string, values map[int]string) Problem {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return Problem{Message: msg}
	}
	line, _ := strconv.Atoi(m[1])
	rest := m[2]
	if u := unknownRE.FindStringSubmatch(rest); u != nil {
		p := Problem{Line: line, Path: keys[lineKey{line, u[1]}], Message: fmt.Sprintf("unknown key %q", u[1])}
		if t, ok := rawTypes[u[2]]; ok {
			p.Message += " (valid keys here: " + strings.Join(yamlKeys(t), ", ") + ")"
		}
		return p
	}
	if d := dupFieldRE.FindStringSubmatch(rest); d != nil {
		key := d[1] + d[2]
		return Problem{Line: line, Path: keys[lineKey{line, key}], Message: "key given twice"}
	}
	if t := typeErrRE.FindStringSubmatch(rest); t != nil {
		return Problem{Line: line, Path: values[line], Message: fmt.Sprintf("expected %s, found %s", describeGo(t[3]), describeTag(t[1], t[2]))}
	}
	return Problem{Line: line, Path: values[line], Message: rest}
}

func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" {
			keys = append(keys, tag)
		}
	}
	return keys
}

func describeGo(t string) string {
	switch {
	case t == "string":
		return "a single value"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "config.raw"), strings.HasPrefix(t, "*config.raw"):
		return "a mapping of keys"
	}
	return t
}

func describeTag(tag, value string) string {
	switch tag {
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	}
	if value != "" {
		return fmt.Sprintf("the value %s", value)
	}
	return "a single value"
}
