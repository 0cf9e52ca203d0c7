// middleware.go -- the layers every request passes through, outermost
// first: recoverPanics (backstop), overLimitOnly (a connection beyond
// --max-connections reaches only the health endpoints, connlimit.go),
// limits (414/431), instrument (metrics, latency), auth (401), then
// dispatch.
package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log"
	"net/http"
	"runtime/debug"
	"strings"
	"time"
)

// recoverPanics turns a handler panic into a logged JSON 500 rather than a
// dropped connection.  It is a backstop only: the tests send every kind of
// bad request and check that none reaches it (panicsRecovered stays 0).
// http.ErrAbortHandler is re-panicked: it is net/http's way to abort.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.metrics.panics.Inc()
			log.Printf("mantisdb: panic serving %s %s: %v\n%s", r.Method, r.URL.Path, v, debug.Stack())
			writeAPIError(w, r, newError(http.StatusInternalServerError, CodeInternal, "internal error"))
		}()
		next.ServeHTTP(w, r)
	})
}

// limits answers 414 for a request target over maxURL bytes and 431 for
// headers over maxHeader bytes, in JSON.  Requests larger still never
// reach a handler: net/http refuses them with its own plain-text 431 (see
// Serve, MaxHeaderBytes).
func (s *Server) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.RequestURI) > s.maxURL {
			w.Header().Set("Connection", "close")
			writeAPIError(w, r, newError(http.StatusRequestURITooLong, CodeURITooLong,
				fmt.Sprintf("request target is %d bytes; the limit is %d", len(r.RequestURI), s.maxURL)))
			return
		}
		n := 0
		for k, vs := range r.Header {
			for _, v := range vs {
				n += len(k) + len(v) + 4 // ": " and CRLF
			}
		}
		if n > s.maxHeader {
			w.Header().Set("Connection", "close")
			writeAPIError(w, r, newError(http.StatusRequestHeaderFieldsTooLarge, CodeHeadersTooLarge,
				fmt.Sprintf("request headers are %d bytes; the limit is %d", n, s.maxHeader)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// healthPath reports the endpoints open without a token: orchestrators and
// load balancers probe them without credentials.
func healthPath(p string) bool { return p == "/health" || p == "/livez" || p == "/readyz" }

// auth requires "Authorization: Bearer <token>" when a token is set.  The
// comparison is of SHA-256 digests with subtle.ConstantTimeCompare, so its
// time depends neither on where the first wrong byte is nor on the length.
func (s *Server) auth(next http.Handler) http.Handler {
	if s.cfg.AuthToken == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.cfg.AuthToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if healthPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		h := r.Header.Get("Authorization")
		const scheme = "bearer "
		ok := false
		if len(h) > len(scheme) && strings.EqualFold(h[:len(scheme)], scheme) {
			got := sha256.Sum256([]byte(strings.TrimSpace(h[len(scheme):])))
			ok = subtle.ConstantTimeCompare(got[:], want[:]) == 1
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mantisdb"`)
			writeAPIError(w, r, newError(http.StatusUnauthorized, CodeUnauthorized,
				"missing or wrong bearer token (send 'Authorization: Bearer <token>')"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (pprof and
// deadlines use it).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument counts requests by route, method and status and records their
// latency in Prometheus and in the percentile histograms of /api/v1/stats.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		d := time.Since(start)
		route := routeName(r)
		s.metrics.observe(route, r.Method, sw.status, d)
		s.lat.record(opName(route, r.Method), d)
	})
}
