package nvclient_test

import (
	"strings"
	"testing"

	"github.com/numbergate/numbergate/pkg/nvclient"
)

// TestBadNumberErrorLeavesTheNumberOut: apps log the errors they get; the
// one for a malformed number does not carry it.
func TestBadNumberErrorLeavesTheNumberOut(t *testing.T) {
	for _, in := range []string{"34600000001", "+34 600 000 001", "+34600000001x"} {
		_, err := nvclient.HashPhoneNumber(in)
		if err == nil {
			t.Fatalf("HashPhoneNumber(%q) accepted", in)
		}
		if strings.Contains(err.Error(), "600") {
			t.Errorf("HashPhoneNumber(%q) error carries the number: %v", in, err)
		}
	}
}
