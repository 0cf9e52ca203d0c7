package server

// batchlimit_test.go -- the batch body limit, and the statuses of the
// errors a large or unencodable cluster write can meet.

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"

	"github.com/mantisdb/mantisdb/go/cluster"
	"github.com/mantisdb/mantisdb/go/codec"
	"github.com/mantisdb/mantisdb/go/storage"
)

// TestMaxBatchSizeCap: --max-batch-size cannot exceed what the engine
// applies in one batch, and the bound behind MaxBatchBodyLimit holds: no
// op of the batch body yields more than 40 record bytes per 29 bytes of
// JSON (checked for every key of 1..24 bytes and value of 0..24 bytes; a
// longer key or value only lowers the ratio, base64 being 4/3).
func TestMaxBatchSizeCap(t *testing.T) {
	for _, tc := range []struct {
		size int64
		ok   bool
	}{
		{DefaultConfig().MaxBatchSize, true},
		{MaxBatchBodyLimit, true},
		{MaxBatchBodyLimit + 1, false},
		{codec.MaxBatchSize, false},
	} {
		c := DefaultConfig()
		c.MaxBatchSize = tc.size
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("--max-batch-size %d: %v", tc.size, err)
		}
	}
	if MaxBatchBodyLimit*40/29 > int64(cluster.MaxEntryPayload) {
		t.Fatalf("limit %d allows %d bytes of records", MaxBatchBodyLimit, MaxBatchBodyLimit*40/29)
	}
	b64 := base64.StdEncoding.EncodeToString
	for k := 1; k <= 24; k++ {
		key := b64(make([]byte, k))
		del := `{"op":"delete","key":"` + key + `"},`
		if rec := codec.Size(k, 0); rec*29 > len(del)*40 {
			t.Errorf("delete of a %d-byte key: %d JSON bytes, %d record bytes", k, len(del), rec)
		}
		for v := 0; v <= 24; v++ {
			put := `{"op":"put","key":"` + key + `","value":"` + b64(make([]byte, v)) + `"},`
			if rec := codec.Size(k, v); rec*29 > len(put)*40 {
				t.Errorf("put of %d+%d bytes: %d JSON bytes, %d record bytes", k, v, len(put), rec)
			}
		}
	}
}

// TestClusterEncodingErrorStatus: errors a cluster write can meet map to
// a client error, not 500.
func TestClusterEncodingErrorStatus(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
	}{
		{fmt.Errorf("%w: op 3: too large", cluster.ErrBadEntry), http.StatusBadRequest},
		{fmt.Errorf("%w: 268435400 bytes of records", storage.ErrBatchTooLarge), http.StatusRequestEntityTooLarge},
		{fmt.Errorf("%w: entry 9: %v", cluster.ErrApplyFailed, storage.ErrReadOnly), http.StatusServiceUnavailable},
	} {
		if got := toAPIError(tc.err).Status; got != tc.status {
			t.Errorf("%v: %d, want %d", tc.err, got, tc.status)
		}
	}
}
