package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestServeUsageRecords: issue 9 item 13. Every token issued and every API
// call of a client is recorded (client, purpose, scopes, result, source,
// time; never the number), and `numbergate usage` exports the records as
// CSV and JSON and a per-client daily summary.
func TestServeUsageRecords(t *testing.T) {
	n := startServe(t, t.TempDir(), `network:
  static:
    - prefix: 127.0.0.31/32
      msisdn: "+34600000031"
usage:
  retention: 720h
`)
	p := onboard(t, n, "billed-app", "127.0.0.31")
	start := time.Now().UTC()

	tr := p.flow(scopeVerify, "")
	if r := p.verify(tr.AccessToken, `{"phoneNumber":"+34600000031"}`); r.status != 200 {
		t.Fatalf("verify: %d %v", r.status, r.body)
	}
	tr = p.flow(scopeRead, "")
	if r := p.verify(tr.AccessToken, `{"phoneNumber":"+34600000031"}`); r.status != 403 {
		t.Fatalf("verify with a read-only token: %d %v", r.status, r.body)
	}

	usage := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"usage", "--config", n.cfgPath, "--from", start.Add(-time.Second).Format(time.RFC3339)}, args...), os.Getenv, &out, &errb)
		if err != nil {
			t.Fatalf("usage %v: %v\n%s", args, err, errb.String())
		}
		if strings.Contains(out.String(), "600000031") {
			t.Errorf("usage output holds the number:\n%s", out.String())
		}
		return out.String()
	}

	csvOut := usage()
	lines := strings.Split(strings.TrimSpace(csvOut), "\n")
	if len(lines) != 5 || lines[0] != "time,client_id,event,operation,purpose,scopes,result,source" {
		t.Fatalf("CSV:\n%s", csvOut)
	}
	for i, want := range []string{
		",billed-app,token_issued,token,dpv:FraudPreventionAndDetection,openid number-verification:verify,OK,static",
		",billed-app,api_call,phoneNumberVerify,dpv:FraudPreventionAndDetection,openid number-verification:verify,OK,static",
		",billed-app,token_issued,token,dpv:FraudPreventionAndDetection,openid number-verification:device-phone-number:read,OK,static",
		",billed-app,api_call,phoneNumberVerify,dpv:FraudPreventionAndDetection,openid number-verification:device-phone-number:read,PERMISSION_DENIED,static",
	} {
		if !strings.HasSuffix(lines[i+1], want) {
			t.Errorf("record %d: %q, want ...%q", i+1, lines[i+1], want)
		}
	}

	var records []map[string]any
	if err := json.Unmarshal([]byte(usage("--format", "json")), &records); err != nil || len(records) != 4 || records[1]["result"] != "OK" || records[1]["event"] != "api_call" {
		t.Errorf("JSON records: %v %v", records, err)
	}

	var summary []map[string]any
	if err := json.Unmarshal([]byte(usage("--summary", "--format", "json")), &summary); err != nil || len(summary) != 1 {
		t.Fatalf("summary: %v %v", summary, err)
	}
	s := summary[0]
	if s["client_id"] != "billed-app" || s["day"] != start.Format(time.DateOnly) || s["api_calls"] != 2.0 || s["api_calls_ok"] != 1.0 ||
		s["api_calls_refused"] != 1.0 || s["tokens_issued"] != 2.0 {
		if start.Format(time.DateOnly) == time.Now().UTC().Format(time.DateOnly) { // not across a midnight
			t.Errorf("summary %v", s)
		}
	}
	if out := usage("--summary"); !strings.HasPrefix(out, "day,client_id,api_calls,api_calls_ok,api_calls_refused,tokens_issued\n") {
		t.Errorf("CSV summary:\n%s", out)
	}

	// Bad input is refused with the problem named.
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"usage", "--config", n.cfgPath, "--from", "yesterday", "--format", "xml"}, os.Getenv, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), `--from: "yesterday" is neither an RFC 3339 time`) || !strings.Contains(err.Error(), `--format "xml": use csv or json`) {
		t.Errorf("bad flags: %v", err)
	}
}
