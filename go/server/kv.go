// kv.go -- the key-value endpoints beyond single keys: ordered listing
// with pagination (GET /api/v1/kv) and atomic batches (POST
// /api/v1/kv/batch).  Keys and values travel as standard base64 in JSON,
// so they are binary-safe.
package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// List limits: a page holds at most limit items (default 100, at most
// 1000) and stops early once it carries maxPageBytes of keys and values, so
// one request never buffers more than about that (plus one entry).
const (
	defaultListLimit = 100
	maxListLimit     = 1000
	maxPageBytes     = 4 << 20
)

// cursorVersion starts every cursor, so a cursor from another format (or
// garbage) is rejected rather than misread.
const cursorVersion = 1

type listItem struct {
	Key []byte `json:"key"` // base64
	// Value is base64, absent with keys_only=true.  A pointer, because
	// omitempty would also drop an empty (but present) value.
	Value *[]byte `json:"value,omitempty"`
}

type listResponse struct {
	Items      []listItem `json:"items"`
	Count      int        `json:"count"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// encodeCursor returns the opaque cursor resuming after key.
func encodeCursor(key []byte) string {
	b := make([]byte, 0, len(key)+1)
	b = append(b, cursorVersion)
	return base64.RawURLEncoding.EncodeToString(append(b, key...))
}

// decodeCursor returns the key a cursor resumes after.
func decodeCursor(c string) ([]byte, *apiError) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 2 || b[0] != cursorVersion {
		return nil, newError(http.StatusBadRequest, CodeInvalidCursor, "invalid cursor: pass next_cursor from the previous page unchanged")
	}
	return b[1:], nil
}

// handleList: GET /api/v1/kv?prefix=&start=&end=&limit=&cursor=&keys_only=.
// prefix, start and end are percent-decoded bytes; start is inclusive, end
// exclusive; with a prefix too, the range is intersected with it.
func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q, aerr := parseQuery(r, listParams...)
	if aerr != nil {
		writeAPIError(w, r, aerr)
		return
	}
	limit := defaultListLimit
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > maxListLimit {
			writeAPIError(w, r, newError(http.StatusBadRequest, CodeInvalidQuery,
				fmt.Sprintf("limit must be an integer 1..%d, not %q", maxListLimit, v[0])))
			return
		}
		limit = n
	}
	keysOnly := false
	if v, ok := q["keys_only"]; ok {
		b, err := strconv.ParseBool(v[0]) // the message below lists what it takes
		if err != nil {
			writeAPIError(w, r, newError(http.StatusBadRequest, CodeInvalidQuery, fmt.Sprintf("keys_only must be true or false (or 1, 0, t, f, T, F, TRUE, FALSE, True, False), not %q", v[0])))
			return
		}
		keysOnly = b
	}
	var opts storage.IterOptions
	if v, ok := q["prefix"]; ok && v[0] != "" {
		opts.Prefix = []byte(v[0])
	}
	if v, ok := q["start"]; ok && v[0] != "" {
		opts.LowerBound = []byte(v[0])
	}
	if v, ok := q["end"]; ok && v[0] != "" {
		opts.UpperBound = []byte(v[0])
	}
	if opts.LowerBound != nil && opts.UpperBound != nil && bytes.Compare(opts.LowerBound, opts.UpperBound) > 0 {
		writeAPIError(w, r, newError(http.StatusBadRequest, CodeInvalidQuery, "start must not be after end"))
		return
	}
	var after []byte
	if v, ok := q["cursor"]; ok {
		if after, aerr = decodeCursor(v[0]); aerr != nil {
			writeAPIError(w, r, aerr)
			return
		}
	}

	it, err := s.engine.NewIterator(opts)
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer it.Close()
	var valid bool
	if after != nil {
		// The smallest key after `after` is after+0x00.
		valid = it.SeekGE(append(after[:len(after):len(after)], 0))
	} else {
		valid = it.First()
	}
	resp := listResponse{Items: []listItem{}}
	size := 0
	for ; valid; valid = it.Next() {
		if len(resp.Items) == limit || (size >= maxPageBytes && len(resp.Items) > 0) {
			resp.NextCursor = encodeCursor(resp.Items[len(resp.Items)-1].Key)
			break
		}
		item := listItem{Key: bytes.Clone(it.Key())}
		if !keysOnly {
			v := append([]byte{}, it.Value()...) // never nil: "" not absent
			item.Value = &v
			size += len(v)
		}
		size += len(item.Key)
		resp.Items = append(resp.Items, item)
	}
	if err := it.Error(); err != nil {
		writeError(w, r, err)
		return
	}
	resp.Count = len(resp.Items)
	writeJSON(w, r, http.StatusOK, resp)
}

// batchRequest is the body of POST /api/v1/kv/batch.
type batchRequest struct {
	Ops []batchOp `json:"ops"`
}

type batchOp struct {
	Op    string  `json:"op"`    // "put" or "delete"
	Key   string  `json:"key"`   // base64
	Value *string `json:"value"` // base64; required for put
	TTL   string  `json:"ttl"`   // optional, put only: "30s" or whole seconds
}

type batchResponse struct {
	Applied int `json:"applied"`
}

// handleBatch applies every operation of the request atomically, or none.
func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	if _, aerr := parseQuery(r); aerr != nil {
		writeAPIError(w, r, aerr)
		return
	}
	if r.ContentLength > s.cfg.MaxBatchSize {
		writeAPIError(w, r, newError(http.StatusRequestEntityTooLarge, CodeTooLarge,
			fmt.Sprintf("batch body is %d bytes; the limit is %d", r.ContentLength, s.cfg.MaxBatchSize)))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBatchSize))
	if err != nil {
		writeAPIError(w, r, jsonError(err))
		return
	}
	if msg := strictMembers(body, batchMembers); msg != "" {
		writeAPIError(w, r, newError(http.StatusBadRequest, CodeInvalidJSON, msg))
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req batchRequest
	if err := dec.Decode(&req); err != nil {
		writeAPIError(w, r, jsonError(err))
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			writeAPIError(w, r, jsonError(err))
		} else {
			writeAPIError(w, r, newError(http.StatusBadRequest, CodeInvalidJSON, "unexpected data after the JSON object"))
		}
		return
	}
	if req.Ops == nil {
		// null, {} or {"ops":null}: not a batch of nothing ({"ops":[]}),
		// a body that is not a batch at all.
		writeAPIError(w, r, newError(http.StatusBadRequest, CodeBadRequest, `missing "ops": the body is {"ops":[...]}, {"ops":[]} for none`))
		return
	}
	var b storage.Batch
	for i, op := range req.Ops {
		bad := func(code, format string, a ...any) {
			writeAPIError(w, r, newError(http.StatusBadRequest, code, fmt.Sprintf("ops[%d]: ", i)+fmt.Sprintf(format, a...)))
		}
		key, err := decodeBase64(op.Key)
		if err != nil {
			bad(CodeInvalidBase64, "key is not standard base64: %v", err)
			return
		}
		if len(key) == 0 {
			bad(CodeInvalidKey, "empty key")
			return
		}
		switch op.Op {
		case "put":
			if op.Value == nil {
				bad(CodeBadRequest, "put needs a value")
				return
			}
			value, err := decodeBase64(*op.Value)
			if err != nil {
				bad(CodeInvalidBase64, "value is not standard base64: %v", err)
				return
			}
			var ttl time.Duration
			if op.TTL != "" {
				var aerr *apiError
				if ttl, aerr = parseTTL(op.TTL); aerr != nil {
					bad(CodeInvalidTTL, "%s", aerr.Message)
					return
				}
			}
			b.Ops = append(b.Ops, storage.Op{Kind: storage.OpPut, Key: key, Value: value, TTL: ttl})
		case "delete":
			if op.Value != nil || op.TTL != "" {
				bad(CodeBadRequest, "delete takes no value or ttl")
				return
			}
			b.Delete(key)
		default:
			bad(CodeBadRequest, "op must be \"put\" or \"delete\", not %q", op.Op)
			return
		}
	}
	if err := s.engine.Apply(&b); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, batchResponse{Applied: len(b.Ops)})
}

// decodeBase64 decodes standard base64 (RFC 4648 section 4) exactly:
// encoding/base64 skips CR and LF even in Strict mode, which the API's
// base64 does not allow.
func decodeBase64(s string) ([]byte, error) {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return nil, fmt.Errorf("line break at byte %d", i)
	}
	return base64.StdEncoding.Strict().DecodeString(s)
}

// batchMembers are the member names of a batch request (batchRequest,
// batchOp), spelled exactly.
var batchMembers = map[string]bool{"ops": true, "op": true, "key": true, "value": true, "ttl": true}

// strictMembers returns why body, read as JSON, names an object member
// twice or by a name not in names exactly ("" when neither, or when body
// is not JSON, which the decoder then reports).  encoding/json keeps the
// last of duplicate members and matches names case-insensitively, so
// either would apply a request other than the one sent.
func strictMembers(body []byte, names map[string]bool) string {
	// One entry per open object or array: an object's member names so far
	// (nil for an array) and whether its next string is a name.
	type open struct {
		seen   map[string]bool
		atName bool
	}
	var stack []open
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, open{seen: map[string]bool{}, atName: true})
			continue
		case json.Delim('['):
			stack = append(stack, open{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if n := len(stack) - 1; n >= 0 && stack[n].atName {
				name, _ := tok.(string)
				switch {
				case stack[n].seen[name]:
					return fmt.Sprintf("member %q appears twice in one object", name)
				case !names[name]:
					return fmt.Sprintf("unknown member %q (names are case-sensitive)", name)
				}
				stack[n].seen[name], stack[n].atName = true, false
				continue
			}
		}
		// A value ended: the next string of the enclosing object is a name.
		if n := len(stack) - 1; n >= 0 && stack[n].seen != nil {
			stack[n].atName = true
		}
	}
}

// jsonError classifies a request-body decoding error.
func jsonError(err error) *apiError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return bodyError(err)
	}
	// A wrong type: encoding/json's text names Go types ("Go struct field
	// batchRequest.ops of type []server.batchOp"); say it in JSON's terms.
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) && ute.Type != nil {
		where := ute.Field
		if where == "" {
			where = "body"
		}
		return newError(http.StatusBadRequest, CodeInvalidJSON,
			fmt.Sprintf("invalid JSON body: %s: want %s, not %s", where, jsonKind(ute.Type), article(ute.Value)))
	}
	// Syntax errors, an empty or cut-off body: all malformed requests.
	return newError(http.StatusBadRequest, CodeInvalidJSON, "invalid JSON body: "+err.Error())
}

// jsonKind names the JSON a request field of type t takes.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return jsonKind(t.Elem())
	case reflect.Slice, reflect.Array:
		if t == reflect.TypeFor[[]batchOp]() {
			return "an array of operations"
		}
		return "an array"
	case reflect.Struct, reflect.Map:
		if t == reflect.TypeFor[batchOp]() {
			return "an operation object" // an element of ops
		}
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another type"
}

// article puts "a" or "an" before the JSON kind encoding/json reports
// ("object", "array", "number", "string", "bool", or "number 1.5").
func article(v string) string {
	switch v {
	case "":
		return "that"
	case "bool":
		return "a boolean"
	}
	if strings.ContainsRune("aeiou", rune(v[0])) {
		return "an " + v
	}
	return "a " + v
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, r, fmt.Errorf("encoding response: %w", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(body, '\n'))
	}
}
