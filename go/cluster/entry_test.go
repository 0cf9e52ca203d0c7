package cluster

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

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
	if _, err := decodeEntry(data, &b); err != nil {
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
		if _, err := decodeEntry(tc.data, &b); !errors.Is(err, ErrBadEntry) {
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
