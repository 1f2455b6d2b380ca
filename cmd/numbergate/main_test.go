package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the server binary the process tests built (proc_test.go)
// once every test has run.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" && os.Getenv("NUMBERGATE_TEST_BIN") == "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
