package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/numbergate/numbergate/internal/nv"
)

// Usage runs `numbergate usage`: it exports the usage records (one per API
// call and per access token issued; never the number) of a time range as
// CSV or JSON, or with --summary one row per client and UTC day.
func (c *CLI) Usage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("usage", "--config FILE --from T [--to T] [--format csv|json] [--summary]", stdout)
	configPath := fs.String("config", "", "configuration `FILE` (as for numbergate serve)")
	fromFlag := fs.String("from", "", "first instant `T`: RFC 3339 (2026-11-01T00:00:00Z) or a UTC date (2026-11-01); required")
	toFlag := fs.String("to", "", "end `T` of the range, excluded, in the same forms (default: now)")
	format := fs.String("format", "csv", "output `FORMAT`: csv or json")
	summary := fs.Bool("summary", false, "print one row per client and UTC day (API calls, of which OK and refused; tokens issued) instead of the records")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	var problems []string
	if len(rest) > 0 {
		problems = append(problems, fmt.Sprintf("unexpected argument %q", rest[0]))
	}
	if *configPath == "" {
		problems = append(problems, "--config is required")
	}
	from, err := parseInstant(*fromFlag)
	switch {
	case *fromFlag == "":
		problems = append(problems, "--from is required (such as 2026-11-01)")
	case err != nil:
		problems = append(problems, "--from: "+err.Error())
	}
	to := c.now()
	if *toFlag != "" {
		if to, err = parseInstant(*toFlag); err != nil {
			problems = append(problems, "--to: "+err.Error())
		}
	}
	if len(problems) == 0 && !from.Before(to) {
		problems = append(problems, fmt.Sprintf("--from %s is not before --to %s", from.Format(time.RFC3339), to.Format(time.RFC3339)))
	}
	if *format != "csv" && *format != "json" {
		problems = append(problems, fmt.Sprintf("--format %q: use csv or json", *format))
	}
	if len(problems) > 0 {
		return problemsError("usage", problems)
	}

	_, st, err := c.openStore(ctx, *configPath)
	if err != nil {
		return err
	}
	defer st.Close()
	records, err := st.UsageRecords(ctx, from, to)
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	if *summary {
		return writeSummary(stdout, *format, summarize(records))
	}
	return writeRecords(stdout, *format, records)
}

// parseInstant reads an RFC 3339 time or a date (midnight UTC).
func parseInstant(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-11-01T00:00:00Z) nor a date (2026-11-01)", s)
}

type usageRow struct {
	Time      string   `json:"time"`
	ClientID  string   `json:"client_id"`
	Event     string   `json:"event"`
	Operation string   `json:"operation"`
	Purpose   string   `json:"purpose"`
	Scopes    []string `json:"scopes"`
	Result    string   `json:"result"`
	Source    string   `json:"source"`
}

func writeRecords(w io.Writer, format string, records []nv.UsageRecord) error {
	rows := make([]usageRow, 0, len(records))
	for _, r := range records {
		rows = append(rows, usageRow{r.At.UTC().Format(time.RFC3339Nano), r.ClientID, r.Event, r.Operation, r.Purpose, nonNil(r.Scopes), r.Result, r.Source})
	}
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"time", "client_id", "event", "operation", "purpose", "scopes", "result", "source"})
	for _, r := range rows {
		_ = cw.Write([]string{r.Time, r.ClientID, r.Event, r.Operation, r.Purpose, strings.Join(r.Scopes, " "), r.Result, r.Source})
	}
	cw.Flush()
	return cw.Error()
}

// dailySummary is one client's usage on one UTC day.
type dailySummary struct {
	Day             string `json:"day"`
	ClientID        string `json:"client_id"`
	APICalls        int    `json:"api_calls"`
	APICallsOK      int    `json:"api_calls_ok"`
	APICallsRefused int    `json:"api_calls_refused"`
	TokensIssued    int    `json:"tokens_issued"`
}

// summarize counts records per UTC day and client, by day then client.
func summarize(records []nv.UsageRecord) []dailySummary {
	type key struct{ day, client string }
	byKey := map[key]*dailySummary{}
	for _, r := range records {
		k := key{r.At.UTC().Format(time.DateOnly), r.ClientID}
		s := byKey[k]
		if s == nil {
			s = &dailySummary{Day: k.day, ClientID: k.client}
			byKey[k] = s
		}
		switch r.Event {
		case nv.UsageAPICall:
			s.APICalls++
			if r.Result == "OK" {
				s.APICallsOK++
			} else {
				s.APICallsRefused++
			}
		case nv.UsageTokenIssued:
			s.TokensIssued++
		}
	}
	out := make([]dailySummary, 0, len(byKey))
	for _, s := range byKey {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Day != out[j].Day {
			return out[i].Day < out[j].Day
		}
		return out[i].ClientID < out[j].ClientID
	})
	return out
}

func writeSummary(w io.Writer, format string, rows []dailySummary) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"day", "client_id", "api_calls", "api_calls_ok", "api_calls_refused", "tokens_issued"})
	for _, s := range rows {
		_ = cw.Write([]string{s.Day, s.ClientID, strconv.Itoa(s.APICalls), strconv.Itoa(s.APICallsOK), strconv.Itoa(s.APICallsRefused), strconv.Itoa(s.TokensIssued)})
	}
	cw.Flush()
	return cw.Error()
}
