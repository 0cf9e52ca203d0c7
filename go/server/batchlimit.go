// batchlimit.go -- the largest --max-batch-size the engines can honour.
package server

import "github.com/mantisdb/mantisdb/go/cluster"

// MaxBatchBodyLimit is the largest --max-batch-size accepted: any POST
// /api/v1/kv/batch body up to it decodes to a batch whose records the
// engine can apply in one batch, and whose records fit
// cluster.MaxEntryPayload (the engine's limit less the applied-index
// record).  In cluster mode a replicated batch is held to the tighter
// cluster.MaxRequestRecords (one Raft log entry, about 64 MiB): a body
// within this limit but past that is refused with 413 by the cluster
// (storage.ErrBatchTooLarge), not by the body check.
//
// Records per body byte peak at the smallest op: {"op":"delete",
// "key":"QQ=="} (without the space) and its comma are 29 bytes of JSON
// for a 40-byte record (a 32-byte header, a 1-byte key, padding to 8).
// Every other op has fewer record bytes per JSON byte: base64 makes a key
// or value 4/3 longer in the JSON than in the record, and a put spells
// out more field names than a delete (TestBatchBodyLimitBound checks the
// small sizes).  So a body of n bytes holds at most 40n/29 bytes of
// records.
const MaxBatchBodyLimit = int64(cluster.MaxEntryPayload / 40 * 29)
