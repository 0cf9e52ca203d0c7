package cluster

// transport.go -- the Raft stream layer with a token handshake.
// hashicorp/raft's TCP transport authenticates nobody: anyone who can
// reach the Raft port can vote, append entries and install snapshots.
// With a token set, every connection opens with
//
//	"MNTR" | u16 BE length | token
//
// from the dialer, and the accepting side drops a connection whose first
// bytes are not exactly that (compared in constant time).  The token
// crosses the wire in clear text, like the HTTP bearer token: it keeps
// out peers that do not know it, not an eavesdropper.  Bind --raft-addr
// to a trusted network (or tunnel it) when that matters; docs/CLUSTER.md.

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

const (
	handshakeMagic   = "MNTR"
	handshakeTimeout = 5 * time.Second
	// MaxTokenLen is the longest token the handshake carries.
	MaxTokenLen = 4096
)

// CheckAddrs checks the Raft bind address and the advertised one (""
// = the bind address) without touching the network, so a configuration
// front end can refuse them before it opens anything: the bind address
// is host:port; without an advertise address it must not be a wildcard
// (peers cannot dial 0.0.0.0); an advertise address is host:port with a
// port 1..65535 and a host that is not empty or a wildcard IP.  A host
// name is resolved later, by Open.
func CheckAddrs(bind, advertise string) error {
	host, _, err := net.SplitHostPort(bind)
	if err != nil {
		return fmt.Errorf("%w: raft address %q: %v", ErrConfig, bind, err)
	}
	if advertise == "" {
		if isWildcard(host) {
			return fmt.Errorf("%w: raft address %q binds all interfaces: set an advertise address", ErrConfig, bind)
		}
		return nil
	}
	if err := CheckPeerAddr(advertise); err != nil {
		return fmt.Errorf("raft advertise: %w", err)
	}
	return nil
}

// CheckPeerAddr checks an address another node or a client will dial (a
// joining member's Raft, HTTP or RESP address): host:port, with a host
// that names one interface and a port in 1..65535.  A Raft address that
// no one can dial, once in the configuration, is a voter that never
// answers: a one-node cluster that adds it loses its quorum for good.
func CheckPeerAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: address %q: %v", ErrConfig, addr, err)
	}
	if isWildcard(host) {
		return fmt.Errorf("%w: address %q is not routable", ErrConfig, addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%w: address %q: port must be 1..65535", ErrConfig, addr)
	}
	return nil
}

// isWildcard reports whether host is empty or an unspecified IP (0.0.0.0,
// ::): an address that names no one interface.
func isWildcard(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

var errHandshake = errors.New("mantisdb cluster: raft peer failed the token handshake")

// tokenStream is a raft.StreamLayer over TCP that adds the handshake when
// token is not empty.
type tokenStream struct {
	ln        net.Listener
	advertise net.Addr
	token     []byte
}

func newTokenStream(bind string, advertise string, token string) (*tokenStream, error) {
	if err := CheckAddrs(bind, advertise); err != nil {
		return nil, err
	}
	if len(token) > MaxTokenLen {
		return nil, fmt.Errorf("%w: token longer than %d bytes", ErrConfig, MaxTokenLen)
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("raft listen: %w", err)
	}
	var adv net.Addr = ln.Addr()
	if advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("%w: raft advertise address %q: %v", ErrConfig, advertise, err)
		}
		if a.IP == nil || a.IP.IsUnspecified() {
			_ = ln.Close()
			return nil, fmt.Errorf("%w: raft advertise address %q is not routable", ErrConfig, advertise)
		}
		adv = a
	} else if ta, ok := adv.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		_ = ln.Close()
		return nil, fmt.Errorf("%w: raft address %q binds all interfaces: set an advertise address", ErrConfig, bind)
	}
	return &tokenStream{ln: ln, advertise: adv, token: []byte(token)}, nil
}

func (s *tokenStream) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	if len(s.token) == 0 {
		return c, nil
	}
	// The check runs on the connection's first Read, in raft's own
	// per-connection goroutine, so a slow peer never stalls Accept.
	return &checkedConn{Conn: c, token: s.token}, nil
}

func (s *tokenStream) Close() error   { return s.ln.Close() }
func (s *tokenStream) Addr() net.Addr { return s.advertise }

func (s *tokenStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	if len(s.token) == 0 {
		return c, nil
	}
	msg := make([]byte, 0, len(handshakeMagic)+2+len(s.token))
	msg = append(msg, handshakeMagic...)
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(s.token)))
	msg = append(msg, s.token...)
	_ = c.SetWriteDeadline(time.Now().Add(handshakeTimeout))
	if _, err := c.Write(msg); err != nil {
		_ = c.Close()
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// checkedConn verifies the handshake before its first Read returns data.
type checkedConn struct {
	net.Conn
	token []byte
	once  sync.Once
	err   error
}

func (c *checkedConn) Read(p []byte) (int, error) {
	c.once.Do(func() { c.err = c.check() })
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(p)
}

func (c *checkedConn) check() error {
	_ = c.Conn.SetReadDeadline(time.Now().Add(handshakeTimeout))
	defer func() { _ = c.Conn.SetReadDeadline(time.Time{}) }()
	hdr := make([]byte, len(handshakeMagic)+2)
	if _, err := io.ReadFull(c.Conn, hdr); err != nil {
		_ = c.Conn.Close()
		return errHandshake
	}
	n := int(binary.BigEndian.Uint16(hdr[len(handshakeMagic):]))
	if string(hdr[:len(handshakeMagic)]) != handshakeMagic || n > MaxTokenLen {
		_ = c.Conn.Close()
		return errHandshake
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(c.Conn, got); err != nil || subtle.ConstantTimeCompare(got, c.token) != 1 {
		_ = c.Conn.Close()
		return errHandshake
	}
	return nil
}
