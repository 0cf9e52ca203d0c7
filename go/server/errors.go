// errors.go -- every error the API returns is one JSON shape,
// {"error": "<message>", "code": "<code>"}, with a status from one table.
// Engine and cache sentinels are mapped here and nowhere else.
package server

import (
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"sync/atomic"

	"github.com/mantisdb/mantisdb/go/benchmode"
	"github.com/mantisdb/mantisdb/go/cache"
	"github.com/mantisdb/mantisdb/go/cluster"
	"github.com/mantisdb/mantisdb/go/storage"
)

// ErrInterrupted: a --benchmark-only run was cancelled (SIGINT/SIGTERM);
// its temporary files were removed.
var ErrInterrupted = benchmode.ErrInterrupted

// Error codes: stable strings clients can switch on (documented in
// docs/API.md).
const (
	CodeBadRequest       = "bad_request"
	CodeInvalidKey       = "invalid_key"
	CodeInvalidTTL       = "invalid_ttl"
	CodeInvalidJSON      = "invalid_json"
	CodeInvalidBase64    = "invalid_base64"
	CodeInvalidCursor    = "invalid_cursor"
	CodeInvalidQuery     = "invalid_query"
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeLengthRequired   = "length_required"
	CodeTooLarge         = "too_large"
	CodeKeyTooLarge      = "key_too_large"
	CodeURITooLong       = "uri_too_long"
	CodeHeadersTooLarge  = "headers_too_large"
	CodeReadOnly         = "read_only"
	CodeUnavailable      = "unavailable"
	CodeNotLeader        = "not_leader" // cluster mode: 307 to the leader
	CodeInternal         = "internal"
)

// apiError is an error with its HTTP status and code.
type apiError struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, when set, is sent as Retry-After (seconds): the
	// condition passes by itself and a retry is expected.
	RetryAfter string
}

func (e *apiError) Error() string { return e.Message }

func newError(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

// retryLater is a 503 for a condition that passes by itself: the client
// is told to retry in a second.
func retryLater(msg string) *apiError {
	e := newError(http.StatusServiceUnavailable, CodeUnavailable, msg)
	e.RetryAfter = "1"
	return e
}

type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// writeAPIError writes e as the JSON error body.  HEAD responses get the
// status and headers only.
func writeAPIError(w http.ResponseWriter, r *http.Request, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	if e.RetryAfter != "" {
		h.Set("Retry-After", e.RetryAfter)
	}
	w.WriteHeader(e.Status)
	if r.Method == http.MethodHead {
		return
	}
	// Messages are read by people ("Bearer <token>", "a < b"); json's
	// default \u003c escaping guards HTML, and this body is JSON with
	// nosniff, never HTML.
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(errorBody{Error: e.Message, Code: e.Code})
}

// writeError maps err (an *apiError or an engine/cache sentinel) to its
// status and writes it.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	writeAPIError(w, r, toAPIError(err))
}

// toAPIError is the one table from errors to statuses.  Anything it does
// not know is an internal error: a bug or an engine fault, never bad input
// (the tests send every kind of bad request and check none lands here).
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	msg := err.Error()
	switch {
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, cache.ErrNotFound):
		return newError(http.StatusNotFound, CodeNotFound, "key not found")
	case errors.Is(err, storage.ErrEmptyKey):
		return newError(http.StatusBadRequest, CodeInvalidKey, msg)
	case errors.Is(err, storage.ErrKeyTooLarge):
		return newError(http.StatusRequestEntityTooLarge, CodeKeyTooLarge, msg)
	case errors.Is(err, storage.ErrValueTooLarge), errors.Is(err, storage.ErrBatchTooLarge),
		errors.Is(err, cache.ErrTooLarge):
		return newError(http.StatusRequestEntityTooLarge, CodeTooLarge, msg)
	case errors.Is(err, storage.ErrInvalidTTL):
		return newError(http.StatusBadRequest, CodeInvalidTTL, msg)
	case errors.Is(err, cache.ErrInvalid):
		return newError(http.StatusBadRequest, CodeBadRequest, msg)
	case errors.Is(err, storage.ErrReadOnly):
		// The cause names files of the data directory: it goes to the
		// log, not to clients.
		logOnce(&lastReadOnly, "mantisdb: engine is read-only: "+msg)
		return newError(http.StatusServiceUnavailable, CodeReadOnly,
			"the engine is read-only after an I/O failure; writes are refused until the server is restarted (the cause is in the server log)")
	case errors.Is(err, storage.ErrClosed), errors.Is(err, cache.ErrClosed):
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "server is shutting down")
	case errors.Is(err, cluster.ErrReservedKey):
		return newError(http.StatusBadRequest, CodeInvalidKey, msg)
	case errors.Is(err, cluster.ErrBadEntry):
		// A write the leader could not encode as a log entry: the
		// request's content, not a fault of the server.  (A damaged
		// entry met while applying is ErrApplyFailed, below.)
		return newError(http.StatusBadRequest, CodeBadRequest, msg)
	case errors.Is(err, cluster.ErrUnavailable), errors.Is(err, cluster.ErrClosed), errors.Is(err, cluster.ErrApplyFailed):
		return newError(http.StatusServiceUnavailable, CodeUnavailable, msg)
	case errors.Is(err, cache.ErrBusy):
		// A read held the cache's retired memory at its cap: it passes
		// once the read ends.
		return retryLater(msg)
	case errors.Is(err, cache.ErrNoMem), errors.Is(err, storage.ErrNoMem):
		return newError(http.StatusServiceUnavailable, CodeUnavailable, msg)
	}
	logOnce(&lastInternal, "mantisdb: internal error: "+msg)
	return newError(http.StatusInternalServerError, CodeInternal, "internal error (the cause is in the server log)")
}

// Last messages logged by logOnce, per kind: an engine that went
// read-only fails every write with the same cause, which is logged once,
// not once per request.
var lastReadOnly, lastInternal atomic.Pointer[string]

func logOnce(last *atomic.Pointer[string], msg string) {
	if p := last.Load(); p != nil && *p == msg {
		return
	}
	last.Store(&msg)
	log.Print(msg)
}
