// errmap_test.go -- engine errors that a valid request can meet map to a
// status that says what happened, never to 500.
package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mantisdb/mantisdb/go/cache"
	"github.com/mantisdb/mantisdb/go/storage"
)

func TestEngineErrorStatus(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{storage.ErrNotFound, http.StatusNotFound, CodeNotFound},
		{fmt.Errorf("get: %w", storage.ErrNoMem), http.StatusServiceUnavailable, CodeUnavailable},
		{cache.ErrNoMem, http.StatusServiceUnavailable, CodeUnavailable},
		{cache.ErrBusy, http.StatusServiceUnavailable, CodeUnavailable},
		{storage.ErrReadOnly, http.StatusServiceUnavailable, CodeReadOnly},
		{storage.ErrClosed, http.StatusServiceUnavailable, CodeUnavailable},
	}
	for _, tc := range tests {
		ae := toAPIError(tc.err)
		if ae.Status != tc.status || ae.Code != tc.code {
			t.Errorf("%v: got %d %s, want %d %s", tc.err, ae.Status, ae.Code, tc.status, tc.code)
		}
	}
	// A busy cache passes by itself: the client is told to retry.
	w := httptest.NewRecorder()
	writeError(w, httptest.NewRequest(http.MethodPut, "/api/v1/cache/k", nil), cache.ErrBusy)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
		t.Errorf("cache.ErrBusy: %d, Retry-After %q; want 503 with Retry-After: 1", w.Code, w.Header().Get("Retry-After"))
	}
}
