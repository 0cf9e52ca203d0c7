package cluster

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mantisdb/mantisdb/go/codec"
	"github.com/mantisdb/mantisdb/go/storage"
)

func TestEntryRoundTripAndDamage(t *testing.T) {
	ops := []storage.Op{
		{Kind: storage.OpPut, Key: []byte("a"), Value: []byte("1")},
		{Kind: storage.OpPut, Key: []byte("b"), Value: nil, ExpiresAt: 42},
		{Kind: storage.OpDelete, Key: []byte("c")},
	}
	data, err := encodeEntry(nil, ops)
	if err != nil {
		t.Fatal(err)
	}
	var b storage.Batch
	if _, _, err := decodeEntry(data, 1, &b); err != nil {
		t.Fatal(err)
	}
	if len(b.Ops) != 3 || string(b.Ops[0].Value) != "1" || b.Ops[1].ExpiresAt != 42 || b.Ops[2].Kind != storage.OpDelete {
		t.Fatalf("decoded %+v", b.Ops)
	}
	bad := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"truncated", data[:len(data)-8]},
		{"trailing", append(append([]byte(nil), data...), make([]byte, 8)...)},
		{"flipped", func() []byte { d := bytes.Clone(data); d[len(d)-9] ^= 1; return d }()},
	}
	for _, tc := range bad {
		b.Reset()
		if _, _, err := decodeEntry(tc.data, 1, &b); !errors.Is(err, ErrBadEntry) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	for _, op := range []storage.Op{{Kind: storage.OpPut, Key: []byte("k"), TTL: time.Second}, {Kind: 7, Key: []byte("k")}} {
		if _, err := encodeEntry(nil, []storage.Op{op}); !errors.Is(err, ErrBadEntry) {
			t.Errorf("encode %+v: %v", op, err)
		}
	}
}

func TestSnapshotStream(t *testing.T) {
	var buf bytes.Buffer
	sw, err := newSnapWriter(&buf, 77)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if err := sw.put([]byte(k), []byte("v"+k), 5); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.finish(); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	sr, err := newSnapReader(bytes.NewReader(full))
	if err != nil || sr.applied != 77 {
		t.Fatalf("header: %v %d", err, sr.applied)
	}
	var got []string
	for {
		rec, ok, err := sr.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, string(rec.Key)+"="+string(rec.Value))
	}
	if len(got) != 3 || got[2] != "c=vc" {
		t.Fatalf("read %v", got)
	}
	// Every strict prefix of the stream is an error, never a smaller
	// snapshot.
	for cut := 0; cut < len(full); cut += 8 {
		sr, err := newSnapReader(bytes.NewReader(full[:cut]))
		for err == nil {
			var ok bool
			if _, ok, err = sr.next(); err == nil && !ok {
				t.Fatalf("a stream cut at %d of %d bytes read as complete", cut, len(full))
			}
		}
		if !errors.Is(err, ErrBadEntry) {
			t.Fatalf("cut at %d: %v", cut, err)
		}
	}
}

// TestTokenHandshake: a peer with the wrong token, or none, never gets a
// byte through; the right token passes.
func TestTokenHandshake(t *testing.T) {
	srv, err := newTokenStream("127.0.0.1:0", "", "right")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, tc := range []struct {
		token string
		ok    bool
	}{{"right", true}, {"wrong", false}, {"", false}} {
		dialer := &tokenStream{token: []byte(tc.token)}
		c, err := dialer.Dial(raft.ServerAddress(srv.Addr().String()), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if tc.token == "" {
			_, _ = c.Write([]byte("GET / HTTP/1.0\r\n\r\n")) // not a handshake
		}
		_, _ = c.Write([]byte("payload!"))
		s, err := srv.Accept()
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 8)
		_, err = io.ReadFull(s, got)
		if tc.ok != (err == nil) || (tc.ok && string(got) != "payload!") {
			t.Errorf("token %q: read %q, %v", tc.token, got, err)
		}
		_ = c.Close()
		_ = s.Close()
	}
	if _, err := newTokenStream("0.0.0.0:0", "", ""); !errors.Is(err, ErrConfig) {
		t.Errorf("wildcard bind without advertise address: %v", err)
	}
	var _ net.Conn = (*checkedConn)(nil)
}

// TestRequestsEntry: a requests entry applies its plain requests and
// those whose read term is the entry's own, skips the others whole
// (reporting their positions), validates the skipped ones too, and is
// refused when damaged; a batch entry still decodes as before.
func TestRequestsEntry(t *testing.T) {
	put := func(k, v string) storage.Op {
		return storage.Op{Kind: storage.OpPut, Key: []byte(k), Value: []byte(v)}
	}
	reqs := []entryReq{
		{readTerm: 0, ops: []storage.Op{put("a", "1")}},
		{readTerm: 5, ops: []storage.Op{put("b", "2"), {Kind: storage.OpDelete, Key: []byte("c")}}},
		{readTerm: 4, ops: []storage.Op{put("d", "3")}},
		{readTerm: 0, ops: []storage.Op{put("e", "4")}},
	}
	data, err := encodeRequestsEntry(nil, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		term  uint64
		keys  string
		stale []int
	}{
		{5, "abce", []int{2}},
		{4, "ade", []int{1}},
		{6, "ae", []int{1, 2}},
	} {
		var b storage.Batch
		flush, stale, err := decodeEntry(data, tc.term, &b)
		if err != nil || flush {
			t.Fatalf("term %d: flush %v, %v", tc.term, flush, err)
		}
		keys := ""
		for _, op := range b.Ops {
			keys += string(op.Key)
		}
		if keys != tc.keys || !slices.Equal(stale, tc.stale) {
			t.Fatalf("term %d: applied %q stale %v, want %q %v", tc.term, keys, stale, tc.keys, tc.stale)
		}
	}
	// Every request of the entry applies: no positions.
	var b storage.Batch
	one, err := encodeRequestsEntry(nil, reqs[1:2])
	if err != nil {
		t.Fatal(err)
	}
	if _, stale, err := decodeEntry(one, 5, &b); err != nil || stale != nil {
		t.Fatalf("one current request: stale %v, %v", stale, err)
	}

	hdrLen := codec.Size(len(requestsKey), 4)
	bad := []struct {
		name string
		data []byte
	}{
		{"header only", data[:hdrLen]},
		{"truncated", data[:len(data)-8]},
		{"a request missing", data[:len(data)-codec.Size(0, codec.Size(1, 1))]},
		{"trailing", append(bytes.Clone(data), make([]byte, 8)...)},
		{"extra request", append(bytes.Clone(data), one[hdrLen:]...)},
		// A bit flipped in the payload of request 2, which term 5 skips:
		// a skipped request is validated all the same.
		{"damaged skipped request", func() []byte {
			d := bytes.Clone(data)
			d[len(d)-codec.Size(0, codec.Size(1, 1))-9] ^= 1
			return d
		}()},
		{"not a batch inside", func() []byte {
			d := bytes.Clone(data[:hdrLen])
			d, _ = codec.Append(d, codec.Record{Type: codec.TypePut, Key: []byte("x")})
			return d
		}()},
	}
	for _, tc := range bad {
		b.Reset()
		if _, _, err := decodeEntry(tc.data, 5, &b); !errors.Is(err, ErrBadEntry) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if _, err := encodeRequestsEntry(nil, nil); !errors.Is(err, ErrBadEntry) {
		t.Errorf("no requests: %v", err)
	}
}

// TestFSMSkipsStaleRequests: the FSM's decision depends on the entry
// alone (its term), so two replicas, and a replay, agree; a skipped
// request leaves the engine untouched and the entry still advances the
// applied index.
func TestFSMSkipsStaleRequests(t *testing.T) {
	data, err := encodeRequestsEntry(nil, []entryReq{
		{readTerm: 2, ops: []storage.Op{{Kind: storage.OpPut, Key: []byte("k"), Value: []byte("stale")}}},
		{readTerm: 0, ops: []storage.Op{{Kind: storage.OpPut, Key: []byte("w"), Value: []byte("blind")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		eng, err := storage.NewDefaultStorageEngine(storage.Options{Dir: t.TempDir(), Sync: storage.SyncNone})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		if err := eng.Put([]byte("k"), []byte("newer")); err != nil {
			t.Fatal(err)
		}
		f, err := newFSM(eng)
		if err != nil {
			t.Fatal(err)
		}
		resp := f.Apply(&raft.Log{Index: 7, Term: 3, Type: raft.LogCommand, Data: data})
		if s, ok := resp.(staleReqs); !ok || !slices.Equal(s, staleReqs{0}) {
			t.Fatalf("response %#v, want staleReqs{0}", resp)
		}
		if v, err := eng.Get([]byte("k")); err != nil || string(v) != "newer" {
			t.Fatalf("k=%q, %v: the stale request was applied", v, err)
		}
		if v, err := eng.Get([]byte("w")); err != nil || string(v) != "blind" {
			t.Fatalf("w=%q, %v", v, err)
		}
		if idx, err := readApplied(eng); err != nil || idx != 7 {
			t.Fatalf("applied index %d, %v", idx, err)
		}
	}
}

// TestEntrySizeExact: entrySize, which the batcher's budget counts, is
// the encoder's actual output size for batch and requests entries of
// any number of requests.
func TestEntrySizeExact(t *testing.T) {
	reqs := []entryReq{
		{readTerm: 3, ops: []storage.Op{{Kind: storage.OpPut, Key: []byte("a"), Value: []byte("1")}}},
		{readTerm: 0, ops: []storage.Op{{Kind: storage.OpDelete, Key: []byte("bb")}, {Kind: storage.OpPut, Key: []byte("c"), Value: make([]byte, 13), ExpiresAt: 9}}},
		{readTerm: 4, ops: []storage.Op{{Kind: storage.OpPut, Key: []byte("dddd"), Value: nil}}},
	}
	for k := 1; k <= len(reqs); k++ {
		var ops []storage.Op
		for _, r := range reqs[:k] {
			ops = append(ops, r.ops...)
		}
		recs := opsEncodedSize(ops)
		data, err := encodeRequestsEntry(nil, reqs[:k])
		if err != nil {
			t.Fatal(err)
		}
		if got := entrySize(recs, k, true); got != len(data) {
			t.Errorf("requests entry of %d requests: entrySize %d, encoded %d bytes", k, got, len(data))
		}
		if data, err = encodeEntry(nil, ops); err != nil {
			t.Fatal(err)
		}
		if got := entrySize(recs, k, false); got != len(data) {
			t.Errorf("batch entry of %d requests: entrySize %d, encoded %d bytes", k, got, len(data))
		}
	}
}
