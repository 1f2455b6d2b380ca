package nvclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
)

// APIBasePath is the Number Verification v2 base path under the issuer.
const APIBasePath = "/number-verification/v2"

var (
	e164Pattern = regexp.MustCompile(`^\+[1-9][0-9]{4,14}$`)
	hashPattern = regexp.MustCompile(`^[a-fA-F0-9]{64}$`)
)

// Number is what Verify checks: a plain E.164 number or its SHA-256.
type Number struct {
	plain     string
	hashed    string
	hashLocal bool
}

// PhoneNumber is a plain E.164 number ("+34600000001"), sent as such.
func PhoneNumber(e164 string) Number { return Number{plain: e164} }

// HashedPhoneNumber is the SHA-256 hex of an E.164 number (with its "+"),
// computed by the caller.
func HashedPhoneNumber(hexSHA256 string) Number { return Number{hashed: hexSHA256} }

// HashOf hashes an E.164 number here and sends only the hash, so the
// provider never receives the number in clear.
func HashOf(e164 string) Number { return Number{plain: e164, hashLocal: true} }

// HashPhoneNumber is the CAMARA hashedPhoneNumber of an E.164 number:
// lowercase hex SHA-256 of the number with its "+".
func HashPhoneNumber(e164 string) (string, error) {
	if !e164Pattern.MatchString(e164) {
		return "", errNotE164
	}
	sum := sha256.Sum256([]byte(e164))
	return hex.EncodeToString(sum[:]), nil
}

func (n Number) body() (map[string]string, error) {
	switch {
	case n.hashLocal:
		h, err := HashPhoneNumber(n.plain)
		if err != nil {
			return nil, err
		}
		return map[string]string{"hashedPhoneNumber": h}, nil
	case n.hashed != "":
		if !hashPattern.MatchString(n.hashed) {
			return nil, errors.New("nvclient: a hashed phone number is 64 hex characters (SHA-256)")
		}
		return map[string]string{"hashedPhoneNumber": n.hashed}, nil
	case n.plain != "":
		if !e164Pattern.MatchString(n.plain) {
			return nil, errNotE164
		}
		return map[string]string{"phoneNumber": n.plain}, nil
	}
	return nil, errors.New("nvclient: no phone number given")
}

// errNotE164 leaves the refused value out: apps log errors, and a number
// must never reach a log in clear.
var errNotE164 = errors.New("nvclient: the phone number is not E.164 (+ then 5 to 15 digits)")

type correlatorKey struct{}

// WithCorrelator makes the API calls made with ctx send x-correlator id
// (pattern ^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$). Without it each call sends a
// fresh one. The provider echoes it; errors carry it.
func WithCorrelator(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlatorKey{}, id)
}

// VerifyResult is the answer of /verify.
type VerifyResult struct {
	// Verified is devicePhoneNumberVerified: whether the number is the
	// one of the device that went through the authorization.
	Verified bool
	// Correlator is the x-correlator of the call.
	Correlator string
}

// Verify asks whether n is the device's number. The access token is
// single use: one Verify or DevicePhoneNumber per authorization. A
// mismatch is Verified false, not an error.
func (c *Client) Verify(ctx context.Context, accessToken string, n Number) (*VerifyResult, error) {
	body, err := n.body()
	if err != nil {
		return nil, err
	}
	raw, _ := json.Marshal(body)
	var out struct {
		Verified *bool `json:"devicePhoneNumberVerified"`
	}
	corr, err := c.callAPI(ctx, "verify", http.MethodPost, "/verify", accessToken, raw, &out)
	if err != nil {
		return nil, err
	}
	if out.Verified == nil {
		return nil, &Error{Op: "verify", Status: http.StatusOK, Code: CodeServerError, Message: "the answer has no devicePhoneNumberVerified", Correlator: corr}
	}
	return &VerifyResult{Verified: *out.Verified, Correlator: corr}, nil
}

// DevicePhoneNumber returns the device's number (E.164). The token must
// carry ScopeDevicePhoneNumber and is single use.
func (c *Client) DevicePhoneNumber(ctx context.Context, accessToken string) (string, error) {
	var out struct {
		Number string `json:"devicePhoneNumber"`
	}
	corr, err := c.callAPI(ctx, "device-phone-number", http.MethodGet, "/device-phone-number", accessToken, nil, &out)
	if err != nil {
		return "", err
	}
	if out.Number == "" {
		return "", &Error{Op: "device-phone-number", Status: http.StatusOK, Code: CodeServerError, Message: "the answer has no devicePhoneNumber", Correlator: corr}
	}
	return out.Number, nil
}

func (c *Client) callAPI(ctx context.Context, op, method, path, accessToken string, body []byte, out any) (string, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.Issuer+APIBasePath+path, rd)
	if err != nil {
		return "", fmt.Errorf("nvclient: %s: %w", op, err)
	}
	corr, _ := ctx.Value(correlatorKey{}).(string)
	if corr == "" {
		corr = "nvclient-" + strings.ToLower(randomString()[:26])
	}
	req.Header.Set("x-correlator", corr)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return corr, fmt.Errorf("nvclient: %s: %w", op, err)
	}
	defer resp.Body.Close()
	if got := resp.Header.Get("x-correlator"); got != "" {
		corr = got
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return corr, fmt.Errorf("nvclient: %s: %w", op, err)
	}
	err = decodeAPIResponse(op, resp.StatusCode, corr, raw, out)
	var e *Error
	if errors.As(err, &e) {
		e.RetryAfter = retryAfter(resp.Header, c.now())
	}
	return corr, err
}

// decodeAPIResponse decodes a 200 answer into out, or turns an error
// answer into an *Error with the CAMARA code and message (or the HTTP
// status text when the body is not a CAMARA error).
func decodeAPIResponse(op string, status int, corr string, raw []byte, out any) error {
	if status != http.StatusOK {
		var e struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Code == "" {
			e.Code, e.Message = http.StatusText(status), ""
			if e.Code == "" {
				e.Code = fmt.Sprintf("HTTP %d", status)
			}
		}
		return &Error{Op: op, Status: status, Code: e.Code, Message: e.Message, Correlator: corr}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &Error{Op: op, Status: status, Code: CodeServerError, Message: "the answer is not JSON", Correlator: corr}
	}
	return nil
}
