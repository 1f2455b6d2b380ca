package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/numbergate/numbergate/internal/config"
	"github.com/numbergate/numbergate/internal/testlog"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	t    *testing.T
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "numbergate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{t: t, cert: cert, key: key, pool: pool}
}

// issue writes a server certificate for 127.0.0.1 with the given serial
// number to certFile and keyFile (through a rename, as a deploy tool would).
func (ca *testCA) issue(serial int64, certFile, keyFile string) {
	t := ca.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(path, typ string, der []byte) {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(keyFile, "PRIVATE KEY", keyDER)
	write(certFile, "CERTIFICATE", der)
}

// client trusts only the test CA and offers HTTP/2.
func (ca *testCA) client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: ca.pool},
			ForceAttemptHTTP2: true,
		},
		CheckRedirect: noRedirect,
		Timeout:       answerWait,
	}
}

// servedSerial is the serial number of the certificate a new connection
// gets.
func servedSerial(t *testing.T, ca *testCA, addr string) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestServeTLS runs serve with native TLS and a certificate from a CA made
// in the test: the whole flow over HTTPS and HTTP/2, then the certificate
// replaced on disk and reloaded on SIGHUP and on the file change, while a
// connection opened before keeps working.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.issue(100, certFile, keyFile)

	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "https://" + pub.Addr().String()
	cfgPath := filepath.Join(dir, "numbergate.yaml")
	yaml := fmt.Sprintf(`listen: %s
issuer: %s
admin_listen: %s
data_dir: data
tls:
  cert_file: tls.crt   # relative to this file
  key_file: tls.key
admin_tls: {cert_file: tls.crt, key_file: tls.key}
network:
  static:
    - prefix: 127.0.0.1/32
      msisdn: "+34600000081"
`, pub.Addr(), issuer, adm.Addr())
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- serve(ctx, cfg, slog.New(slog.NewJSONHandler(logs, nil)), serveListeners{public: pub, admin: adm, ready: func() { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve stopped with %v", err)
		}
	})

	n := &servedNode{issuer: issuer, cfgPath: cfgPath, logs: logs}
	p := onboard(t, n, "app-tls", "")
	p.device, p.http = ca.client(), ca.client()

	t.Run("flow over HTTPS and HTTP/2", func(t *testing.T) {
		p := *p
		p.t = t
		resp, err := p.http.Get(issuer + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var d struct {
			Issuer string `json:"issuer"`
		}
		_ = json.Unmarshal(body, &d)
		if resp.ProtoMajor != 2 || d.Issuer != issuer {
			t.Fatalf("discovery over %s: %s", resp.Proto, body)
		}
		tr := p.flow(scopeVerify, "")
		if r := p.verify(tr.AccessToken, `{"phoneNumber":"+34600000081"}`); r.status != 200 || r.body["devicePhoneNumberVerified"] != true {
			t.Fatalf("verify over TLS: %d %v", r.status, r.body)
		}
		// The admin listener serves HTTPS too (admin_tls).
		resp, err = p.http.Get("https://" + adm.Addr().String() + "/healthz")
		if err != nil {
			t.Fatalf("admin over TLS: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("admin /healthz over TLS: %d", resp.StatusCode)
		}
		// Plain HTTP on the TLS listener gets no API.
		if resp, err := http.Get("http://" + pub.Addr().String() + "/.well-known/openid-configuration"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Error("plain HTTP served on the TLS listener")
			}
		}
	})

	t.Run("reload without dropping connections", func(t *testing.T) {
		if got := servedSerial(t, ca, pub.Addr().String()); got != 100 {
			t.Fatalf("serial %d, want 100", got)
		}
		// A connection opened before the reload (HTTP/2, kept alive).
		kept := ca.client()
		get := func() (reused bool) {
			t.Helper()
			req, _ := http.NewRequest("GET", issuer+"/jwks", nil)
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
			}))
			resp, err := kept.Do(req)
			if err != nil {
				t.Fatalf("request on the kept connection: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
				t.Fatalf("jwks: %d %s", resp.StatusCode, resp.Proto)
			}
			return reused
		}
		get()

		ca.issue(101, certFile, keyFile)
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitSerial(t, ca, pub.Addr().String(), 101)
		waitLog(t, logs, `"reason":"SIGHUP"`)
		if !get() {
			t.Error("the connection opened before the SIGHUP reload was not reused")
		}

		// A change of the files alone, no signal.
		ca.issue(102, certFile, keyFile)
		waitSerial(t, ca, pub.Addr().String(), 102)
		if !get() {
			t.Error("the connection opened before the file-change reload was not reused")
		}

		// A broken pair keeps the certificate in use.
		if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
			t.Fatal(err)
		}
		waitLog(t, logs, "TLS certificate not reloaded")
		if got := servedSerial(t, ca, pub.Addr().String()); got != 102 {
			t.Errorf("after a failed reload the served serial is %d, want 102", got)
		}
	})
}

func waitLog(t *testing.T, logs *testlog.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(answerWait)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %s:\n%s", want, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitSerial(t *testing.T, ca *testCA, addr string, want int64) {
	t.Helper()
	deadline := time.Now().Add(answerWait)
	for {
		got := servedSerial(t, ca, addr)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("served certificate serial %d, want %d", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeTLSBadCertificate: a certificate that cannot be loaded stops
// the start with an error naming the files.
func TestServeTLSBadCertificate(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "numbergate.yaml")
	yaml := "listen: 127.0.0.1:0\nissuer: https://127.0.0.1\nadmin_listen: 127.0.0.1:0\ndata_dir: data\ntls: {cert_file: missing.crt, key_file: missing.key}\n"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	err = serve(context.Background(), cfg, slog.New(slog.DiscardHandler), serveListeners{})
	if err == nil || !strings.Contains(err.Error(), "missing.crt") {
		t.Fatalf("serve with a missing certificate: %v", err)
	}
}

// TestServeSIGHUPWithoutTLS: SIGHUP does not end a server that has no
// certificate to reload; it says so.
func TestServeSIGHUPWithoutTLS(t *testing.T) {
	n := startServe(t, t.TempDir(), "")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, n.logs, "SIGHUP: nothing to reload")
	resp, err := http.Get(n.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatalf("server gone after SIGHUP: %v", err)
	}
	resp.Body.Close()
}
