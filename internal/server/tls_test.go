package server

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePair writes a self-signed certificate with serial and its key.
func writePair(t *testing.T, serial int64, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func served(t *testing.T, c *Certificate) int64 {
	t.Helper()
	cert, err := c.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return cert.Leaf.SerialNumber.Int64()
}

func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if _, err := LoadCertificate(certFile, keyFile, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "c.pem") {
		t.Fatalf("missing files: %v", err)
	}
	writePair(t, 1, certFile, keyFile)
	var logs bytes.Buffer
	c, err := LoadCertificate(certFile, keyFile, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got := served(t, c); got != 1 {
		t.Fatalf("serial %d", got)
	}
	cfg := c.TLSConfig()
	if cfg.MinVersion < 0x0303 || len(cfg.NextProtos) == 0 || cfg.NextProtos[0] != "h2" {
		t.Errorf("TLS config: min %x, ALPN %v", cfg.MinVersion, cfg.NextProtos)
	}

	writePair(t, 2, certFile, keyFile)
	if err := c.Reload("test"); err != nil || served(t, c) != 2 {
		t.Fatalf("reload: %v, serial %d", err, served(t, c))
	}

	// A key that does not match the certificate: the pair in use stays.
	other := filepath.Join(dir, "other")
	writePair(t, 3, other+".c", other+".k")
	data, _ := os.ReadFile(other + ".k")
	if err := os.WriteFile(keyFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload("test"); err == nil {
		t.Fatal("a mismatched pair was loaded")
	}
	if got := served(t, c); got != 2 {
		t.Errorf("after a failed reload the serial is %d, want 2", got)
	}
	if !strings.Contains(logs.String(), "not reloaded") {
		t.Errorf("failed reload not logged: %s", logs.String())
	}
}
