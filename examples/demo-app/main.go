// Command demo-app is a small web app on pkg/nvclient: the user types a
// phone number, presses Verify, goes through the provider's /authorize,
// and lands on a page saying whether the number is the device's.
//
// Against the sandbox, in two terminals at the repository root:
//
//	go run ./cmd/numbergate sandbox
//	go run ./examples/demo-app
//
// then open http://127.0.0.1:9999/. The app reads the demo client from
// sandbox-data/sandbox-client.json (--client) and listens where its
// redirect_uri points (http://127.0.0.1:9999/callback).
package main

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/numbergate/numbergate/pkg/nvclient"
)

//go:embed page.html
var pageFS embed.FS

var page = template.Must(template.ParseFS(pageFS, "page.html"))

func main() {
	client := flag.String("client", "sandbox-data/sandbox-client.json", "the client's credentials (what `numbergate sandbox` writes)")
	addr := flag.String("addr", "", "listen address (default: the host and port of the client's redirect_uri)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *client, *addr); err != nil {
		log.Fatal("demo-app: ", err)
	}
}

func run(ctx context.Context, credsPath, addr string) error {
	cfg, err := nvclient.ReadCredentials(credsPath)
	if err != nil {
		return fmt.Errorf("%w (start `numbergate sandbox` first, in this directory or with --client)", err)
	}
	app, err := newApp(ctx, cfg)
	if err != nil {
		return err
	}
	if addr == "" {
		u, _ := url.Parse(cfg.RedirectURI)
		addr = u.Host
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Printf("demo-app: open http://%s/ (provider %s)", ln.Addr(), cfg.Issuer)
	srv := &http.Server{Handler: app.routes(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// app is the demo's backend: one nvclient.Client and, per browser
// session, the authorization in progress.
type app struct {
	nv       *nvclient.Client
	callback string

	mu      sync.Mutex
	pending map[string]attempt // by session cookie
}

// attempt is what the app remembers between the redirect and the callback.
type attempt struct {
	p       *nvclient.Pending
	phone   string
	expires time.Time
}

const cookieName = "demo_session"

func newApp(ctx context.Context, cfg nvclient.Config) (*app, error) {
	c, err := nvclient.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w (is the provider running at %s?)", err, cfg.Issuer)
	}
	u, err := url.Parse(cfg.RedirectURI)
	if err != nil || u.Path == "" {
		return nil, fmt.Errorf("redirect_uri %q has no path", cfg.RedirectURI)
	}
	return &app{nv: c, callback: u.Path, pending: map[string]attempt{}}, nil
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.form)
	mux.HandleFunc("POST /verify", a.start)
	mux.HandleFunc("GET "+a.callback, a.finish)
	return mux
}

// view is what page.html shows.
type view struct {
	Phone, Device string
	Result        string // "verified", "not-verified", "error" or ""
	Title, Detail string
}

func render(w http.ResponseWriter, status int, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = page.Execute(w, v)
}

func (a *app) form(w http.ResponseWriter, _ *http.Request) {
	render(w, http.StatusOK, view{})
}

// start: the user pressed Verify. Build the authorization URL, remember it
// for this browser, and send the browser there.
func (a *app) start(w http.ResponseWriter, r *http.Request) {
	phone := strings.TrimSpace(r.PostFormValue("phone"))
	device := strings.TrimSpace(r.PostFormValue("device"))
	if device == "" {
		device = phone
	}
	if _, err := nvclient.HashPhoneNumber(phone); err != nil {
		render(w, http.StatusBadRequest, view{Phone: phone, Device: r.PostFormValue("device"), Result: "error",
			Title: "That is not a phone number", Detail: "Type it in international form: + then the country code and number, e.g. +34600000001."})
		return
	}
	if _, err := nvclient.HashPhoneNumber(device); err != nil {
		render(w, http.StatusBadRequest, view{Phone: phone, Device: device, Result: "error",
			Title: "The simulated device's number is not a phone number", Detail: "Leave it empty, or type it like +34600000001."})
		return
	}
	p, err := a.nv.AuthorizationURL(nvclient.AuthRequest{
		Purpose: "FraudPreventionAndDetection",
		// Sandbox only: the simulated network identity of the device.
		// A production provider ignores login_hint and recognises the
		// device from its mobile data connection.
		LoginHint: "tel:" + device,
	})
	if err != nil {
		render(w, http.StatusInternalServerError, view{Result: "error", Title: "Could not start the verification", Detail: err.Error()})
		return
	}
	sid := rand.Text()
	a.mu.Lock()
	now := time.Now()
	for k, v := range a.pending {
		if now.After(v.expires) {
			delete(a.pending, k)
		}
	}
	a.pending[sid] = attempt{p: p, phone: phone, expires: now.Add(5 * time.Minute)}
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 300})
	http.Redirect(w, r, p.AuthURL, http.StatusSeeOther)
}

// finish: the provider sent the browser back. Exchange the code, call
// /verify with the number the user typed, show the answer.
func (a *app) finish(w http.ResponseWriter, r *http.Request) {
	var at attempt
	if c, err := r.Cookie(cookieName); err == nil {
		a.mu.Lock()
		at = a.pending[c.Value]
		delete(a.pending, c.Value) // one callback per attempt
		a.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1})
	if at.p == nil || time.Now().After(at.expires) {
		render(w, http.StatusBadRequest, view{Result: "error", Title: "No verification in progress",
			Detail: "This page was opened without pressing Verify first, or too late. Start again."})
		return
	}
	tok, err := a.nv.Callback(r.Context(), at.p, r.URL.Query())
	if err != nil {
		render(w, http.StatusOK, errorView(at.phone, err))
		return
	}
	res, err := a.nv.Verify(r.Context(), tok.AccessToken, nvclient.PhoneNumber(at.phone))
	if err != nil {
		render(w, http.StatusOK, errorView(at.phone, err))
		return
	}
	if res.Verified {
		render(w, http.StatusOK, view{Phone: at.phone, Result: "verified", Title: "Verified",
			Detail: at.phone + " is the number of the device you are using."})
		return
	}
	render(w, http.StatusOK, view{Phone: at.phone, Result: "not-verified", Title: "Not verified",
		Detail: at.phone + " is not the number of the device you are using."})
}

// errorView explains a failure to the user; the developer's details (code,
// x-correlator) go in small print.
func errorView(phone string, err error) view {
	v := view{Phone: phone, Result: "error", Title: "Verification failed"}
	var e *nvclient.Error
	switch {
	case errors.As(err, &e) && e.Code == nvclient.CodeAccessDenied:
		v.Title = "Your mobile network did not recognise this device"
		v.Detail = "Switch off Wi-Fi so the request goes over mobile data, then try again. (access_denied)"
	case errors.As(err, &e):
		v.Detail = fmt.Sprintf("%s at %s: %s", e.Code, e.Op, e.Message)
		if e.Correlator != "" {
			v.Detail += " (x-correlator " + e.Correlator + ")"
		}
	case errors.Is(err, nvclient.ErrStateMismatch):
		v.Detail = "The answer did not belong to this verification. Start again."
	default:
		v.Detail = err.Error()
	}
	return v
}
