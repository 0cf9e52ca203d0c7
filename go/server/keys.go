// keys.go -- GET/HEAD/PUT/DELETE on one key, shared by the key-value
// namespace (/api/v1/kv/<key>, the storage engine) and the cache namespace
// (/api/v1/cache/<key>, the standalone cache).
//
// Key encoding: the key is the rest of the path after the route prefix,
// percent-decoded (RFC 3986), so any byte string can be sent by escaping
// its bytes as %XX; '/' may appear literally or as %2F.  The path is not
// cleaned: "a//b" and "a/./b" are keys of their own.
package server

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mantisdb/mantisdb/go/cache"
)

// TTLHeader carries a TTL as an alternative to ?ttl=.
const TTLHeader = "Mantis-TTL"

// octetStream is the Content-Type of a value, shared (never modified) so a
// GET does not allocate the header's slice.
var octetStream = []string{"application/octet-stream"}

// namespace is what the key handlers need from the engine or the cache.
type namespace interface {
	// view calls fn with the value of key, valid only until fn returns
	// (Engine.View, cache.Cache.View): a GET writes it straight into the
	// response, with no copy of its own.
	view(key []byte, fn func(value []byte) error) error
	put(key, value []byte, ttl time.Duration) error
	del(key []byte) error
	// maxKey is the longest key; maxValue the longest value for key.
	maxKey() int
	maxValue(key []byte) int64
}

// kvNamespace is the storage engine.
type kvNamespace struct{ s *Server }

func (n kvNamespace) view(key []byte, fn func([]byte) error) error {
	return n.s.engine.View(key, fn)
}

func (n kvNamespace) put(key, value []byte, ttl time.Duration) error {
	if ttl > 0 {
		return n.s.engine.PutWithTTL(key, value, ttl)
	}
	return n.s.engine.Put(key, value)
}

func (n kvNamespace) del(key []byte) error      { return n.s.engine.Delete(key) }
func (n kvNamespace) maxKey() int               { return n.s.cfg.MaxKeySize }
func (n kvNamespace) maxValue(key []byte) int64 { return int64(n.s.cfg.MaxValueSize) }

// cacheNamespace is the standalone cache.
type cacheNamespace struct{ s *Server }

func (n cacheNamespace) view(key []byte, fn func([]byte) error) error {
	return n.s.withCache(func(c cache.Cache) error { return c.View(key, fn) })
}

func (n cacheNamespace) put(key, value []byte, ttl time.Duration) error {
	return n.s.withCache(func(c cache.Cache) error { return c.Set(key, value, ttl) })
}

// del of an absent cache key is not an error, as in the kv namespace:
// DELETE is idempotent.
func (n cacheNamespace) del(key []byte) error {
	err := n.s.withCache(func(c cache.Cache) error { return c.Delete(key) })
	if errors.Is(err, cache.ErrNotFound) {
		return nil
	}
	return err
}

func (n cacheNamespace) maxKey() int { return min(n.s.cfg.MaxKeySize, cache.MaxKeySize) }

// maxValue is the smaller of --max-value-size and what one cache shard can
// hold beside this key (cache.Stats.MaxEntrySize).
func (n cacheNamespace) maxValue(key []byte) int64 {
	limit := int64(min(n.s.cfg.MaxValueSize, cache.MaxValueSize))
	room := int64(n.s.cacheMaxEntry) - int64(cache.Charge(len(key), 0))
	return max(min(limit, room), 0)
}

// keyRoute serves one key of ns.  key is the percent-decoded path rest.
func (s *Server) keyRoute(w http.ResponseWriter, r *http.Request, ns namespace, key string) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
	default:
		methodNotAllowed(w, r, "GET, HEAD, PUT, DELETE")
		return
	}
	allowed := []string(nil)
	if r.Method == http.MethodPut {
		allowed = []string{"ttl"}
	}
	q, aerr := parseQuery(r, allowed...)
	if aerr != nil {
		writeAPIError(w, r, aerr)
		return
	}
	if key == "" {
		writeAPIError(w, r, newError(http.StatusBadRequest, CodeInvalidKey, "empty key: put the key after the route prefix"))
		return
	}
	if len(key) > ns.maxKey() {
		writeAPIError(w, r, newError(http.StatusRequestURITooLong, CodeKeyTooLarge,
			fmt.Sprintf("key is %d bytes; the limit is %d", len(key), ns.maxKey())))
		return
	}
	k := []byte(key)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		// The value goes from the engine's buffer to the response; an
		// error of the client connection is not the engine's, so fn
		// returns nil and only a lookup error reaches writeError.
		err := ns.view(k, func(v []byte) error {
			h := w.Header()
			h["Content-Type"] = octetStream
			h["Content-Length"] = []string{strconv.Itoa(len(v))}
			w.WriteHeader(http.StatusOK)
			if r.Method == http.MethodGet {
				_, _ = w.Write(v)
			}
			return nil
		})
		if err != nil {
			writeError(w, r, err)
		}
	case http.MethodPut:
		ttl, aerr := requestTTL(r, q)
		if aerr != nil {
			writeAPIError(w, r, aerr)
			return
		}
		v, aerr := readValue(w, r, ns.maxValue(k))
		if aerr != nil {
			writeAPIError(w, r, aerr)
			return
		}
		if err := ns.put(k, v, ttl); err != nil {
			writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		if err := ns.del(k); err != nil {
			writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// readValue reads a PUT body of at most limit bytes.  The length must be
// declared (411 otherwise) and is checked before a byte is read (413), so
// an oversized body is never buffered; MaxBytesReader is the second guard.
func readValue(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *apiError) {
	// net/http gives a request with neither Content-Length nor chunked
	// encoding a length of 0 (it has no body): undeclared all the same.
	if r.ContentLength < 0 || r.ContentLength == 0 && len(r.Header["Content-Length"]) == 0 {
		return nil, newError(http.StatusLengthRequired, CodeLengthRequired,
			"Content-Length required (chunked request bodies are not accepted for values)")
	}
	if r.ContentLength > limit {
		return nil, newError(http.StatusRequestEntityTooLarge, CodeTooLarge,
			fmt.Sprintf("value is %d bytes; the limit is %d", r.ContentLength, limit))
	}
	return readDeclared(http.MaxBytesReader(w, r.Body, limit), r.ContentLength)
}

// bodyChunk is the first allocation of a body read.
const bodyChunk = 64 << 10

// readDeclared reads exactly n bytes from body with memory that follows
// the bytes that arrive, not the length declared: a client that declares
// 64 MiB and sends two bytes must not pin 64 MiB (a thousand such
// connections would pin 64 GiB).  The buffer starts at min(n, bodyChunk)
// and doubles as data comes, capped at n, so an honest upload costs at
// most about twice its size in copying and ends exactly sized.
func readDeclared(body io.Reader, n int64) ([]byte, *apiError) {
	buf := make([]byte, 0, min(n, bodyChunk))
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(n, 2*int64(cap(buf))))
			copy(grown, buf)
			buf = grown
		}
		m, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF && int64(len(buf)) < n {
			err = io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			return nil, bodyError(err)
		}
	}
	return buf, nil
}

// bodyError classifies an error met while reading a request body.
func bodyError(err error) *apiError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return newError(http.StatusRequestEntityTooLarge, CodeTooLarge,
			fmt.Sprintf("request body over the limit of %d bytes", mbe.Limit))
	}
	return newError(http.StatusBadRequest, CodeBadRequest, "reading request body: "+err.Error())
}

// listParams are the query parameters of GET /api/v1/kv (handleList).
var listParams = []string{"prefix", "start", "end", "limit", "cursor", "keys_only"}

// parseQuery parses the query string strictly: malformed escapes and
// parameters the endpoint does not take are 400s, so a typo (?tll=30s) is
// reported rather than ignored.  Values are percent-decoded as path keys
// are: a '+' is a plus sign, not a space (url.ParseQuery's form decoding
// would list "a b" for ?prefix=a+b).
func parseQuery(r *http.Request, allowed ...string) (url.Values, *apiError) {
	q := url.Values{}
	for _, pair := range strings.Split(r.URL.RawQuery, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		name, err := url.PathUnescape(k)
		if err == nil {
			v, err = url.PathUnescape(v)
		}
		if err != nil {
			return nil, newError(http.StatusBadRequest, CodeInvalidQuery, "malformed query string: "+err.Error())
		}
		q[name] = append(q[name], v)
	}
	for name := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || name == a
		}
		if !ok {
			msg := fmt.Sprintf("unknown query parameter %q", name)
			if len(allowed) > 0 {
				msg += " (this endpoint takes: " + strings.Join(allowed, ", ") + ")"
			}
			if slices.Contains(listParams, name) && r.URL.Path == "/api/v1/kv/" {
				msg += "; a listing is GET /api/v1/kv, without the trailing slash (/api/v1/kv/ names the empty key)"
			}
			return nil, newError(http.StatusBadRequest, CodeInvalidQuery, msg)
		}
		if len(q[name]) > 1 {
			return nil, newError(http.StatusBadRequest, CodeInvalidQuery, fmt.Sprintf("query parameter %q given twice", name))
		}
	}
	return q, nil
}

// requestTTL reads the TTL from ?ttl= or the Mantis-TTL header (0 when
// neither is set; 400 when both are and differ).
func requestTTL(r *http.Request, q url.Values) (time.Duration, *apiError) {
	qv, inQuery := q["ttl"]
	hv := r.Header.Values(TTLHeader)
	if len(hv) > 1 {
		return 0, newError(http.StatusBadRequest, CodeInvalidTTL, TTLHeader+" header given twice")
	}
	switch {
	case inQuery && len(hv) == 1:
		// Both given: they must name the same duration, however written
		// ("30s" and "30" agree).
		qd, aerr := parseTTL(qv[0])
		if aerr != nil {
			return 0, aerr
		}
		hd, aerr := parseTTL(hv[0])
		if aerr != nil {
			return 0, aerr
		}
		if qd != hd {
			return 0, newError(http.StatusBadRequest, CodeInvalidTTL,
				fmt.Sprintf("ttl query parameter (%v) and %s header (%v) disagree", qd, TTLHeader, hd))
		}
		return qd, nil
	case inQuery:
		return parseTTL(qv[0])
	case len(hv) == 1:
		return parseTTL(hv[0])
	}
	return 0, nil
}

// parseTTL accepts a Go duration ("30s", "1h30m", "1500ms") or a whole
// number of seconds ("30", as Redis EX).  It must be positive.
func parseTTL(s string) (time.Duration, *apiError) {
	bad := func(why string) *apiError {
		return newError(http.StatusBadRequest, CodeInvalidTTL,
			fmt.Sprintf("invalid TTL %q: %s (use a duration like 30s, 1h30m or whole seconds)", s, why))
	}
	if s == "" {
		return 0, bad("empty")
	}
	// An expiry is Unix nanoseconds in an int64 (the record format), so
	// it must fall before the year 2262.
	const tooLong = "too long: the expiry would fall after the year 2262"
	var d time.Duration
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > math.MaxInt64/int64(time.Second) {
			return 0, bad(tooLong)
		}
		d = time.Duration(n) * time.Second
	} else if errors.Is(err, strconv.ErrRange) && s[0] != '-' {
		return 0, bad(tooLong)
	} else {
		var perr error
		if d, perr = time.ParseDuration(s); perr != nil {
			if durationSyntax.MatchString(s) && s[0] != '-' {
				return 0, bad(tooLong) // well formed: ParseDuration overflowed
			}
			return 0, bad("not a duration")
		}
	}
	if d <= 0 {
		return 0, bad("must be positive")
	}
	if int64(d) > math.MaxInt64-time.Now().UnixNano() {
		return 0, bad(tooLong)
	}
	return d, nil
}

// durationSyntax is what time.ParseDuration reads, whatever the size: a
// sign, then numbers each with a unit.
var durationSyntax = regexp.MustCompile(`^[-+]?([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+$`)
