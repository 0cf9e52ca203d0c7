// resp.go -- the Redis protocol listener beside HTTP (go/resp), on the
// same engine: started by Run when --resp-port is not 0, closed by Close
// before the engine, and counted in /metrics and /api/v1/stats.
package server

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mantisdb/mantisdb/go/resp"
)

// RESPAddr is host:resp-port.
func (c *Config) RESPAddr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.RESPPort)) }

// listenRESP binds --resp-port and serves RESP on it in the background.
// In cluster mode the engine is the cluster's, so RESP writes go through
// Raft as HTTP's do, and resp.Config.Cluster routes reads and refusals
// (go/resp/cluster.go).
func (s *Server) listenRESP() error {
	if s.cfg.RESPPort == 0 {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.RESPAddr())
	if err != nil {
		return fmt.Errorf("listen (resp): %w", err)
	}
	s.ServeRESP(ln)
	log.Printf("mantisdb: Redis protocol on %s", ln.Addr())
	return nil
}

// ServeRESP serves the Redis protocol on ln until Close.  The engine
// must implement resp.Store (both engines of go/storage do).
func (s *Server) ServeRESP(ln net.Listener) {
	st, ok := s.engine.(resp.Store)
	if !ok {
		log.Printf("mantisdb: engine %T has no atomic updates; Redis protocol off", s.engine)
		_ = ln.Close()
		return
	}
	r := resp.New(resp.Config{
		AuthToken:       s.cfg.AuthToken,
		MaxKeySize:      s.cfg.MaxKeySize,
		MaxValueSize:    s.cfg.MaxValueSize,
		MaxClients:      s.cfg.MaxConnections,
		Version:         s.build.Version,
		Sync:            s.cfg.Sync,
		DataDir:         s.cfg.DataDir,
		InMemory:        s.cfg.InMemory,
		CheckpointBytes: s.cfg.CheckpointBytes,
		Cluster:         s.respCluster(),
		Loops:           s.cfg.RESPLoops,
	}, st)
	s.respSrv.Store(r)
	go func() {
		if err := r.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Printf("mantisdb: resp listener: %v", err)
		}
	}()
}

// shutdownRESP starts RESP's shutdown in the background: it stops
// accepting at once, lets commands in flight finish (up to ctx) and closes
// the connections.  The channel is closed when that is done.  Serve runs it
// beside the HTTP drain, so RESP does not take new work while /readyz
// already answers 503.
func (s *Server) shutdownRESP(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	r := s.respSrv.Load()
	if r == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		_ = r.Shutdown(ctx)
	}()
	return done
}

// closeRESP closes the RESP listener and its connections and waits for
// the commands in flight.
func (s *Server) closeRESP() {
	if r := s.respSrv.Swap(nil); r != nil {
		_ = r.Close()
	}
}

// RESPStats is the "resp" object of /api/v1/stats.
type RESPStats struct {
	ConnectedClients int               `json:"connected_clients"`
	Connections      uint64            `json:"connections_total"`
	Rejected         uint64            `json:"rejected_connections"`
	Shed             uint64            `json:"shed_connections"`
	ProtocolErrors   uint64            `json:"protocol_errors"`
	SlowClients      uint64            `json:"slow_clients_closed"`
	Commands         uint64            `json:"commands_total"`
	CommandCalls     map[string]uint64 `json:"command_calls"`
}

func (s *Server) respStats() *RESPStats {
	r := s.respSrv.Load()
	if r == nil {
		return nil
	}
	st := r.Stats()
	return &RESPStats{ConnectedClients: st.ConnectedClients, Connections: st.Connections,
		Rejected: st.Rejected, Shed: st.Shed, ProtocolErrors: st.ProtocolErrors, SlowClients: st.SlowClients, Commands: st.Commands,
		CommandCalls: r.CommandCalls()}
}

var (
	descRESPClients  = desc("mantisdb_resp_connected_clients", "Redis protocol connections open.")
	descRESPConns    = desc("mantisdb_resp_connections_total", "Redis protocol connections accepted.")
	descRESPRejected = desc("mantisdb_resp_rejected_connections_total", "Redis protocol connections refused (too many clients).")
	descRESPShed     = desc("mantisdb_resp_shed_connections_total", "Unauthenticated Redis protocol connections closed to make room at the client limit.")
	descRESPProto    = desc("mantisdb_resp_protocol_errors_total", "Redis protocol connections closed for a protocol error.")
	descRESPSlow     = desc("mantisdb_resp_slow_clients_total", "Redis protocol connections closed for leaving more than the limit of replies unread.")
	descRESPCommands = desc("mantisdb_resp_commands_total", "Redis protocol commands executed, by command.", "cmd")
)

// respCollector reads the RESP counters once per scrape (nothing while
// the listener is off).
type respCollector struct{ s *Server }

func (c *respCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRESPClients, descRESPConns, descRESPRejected, descRESPShed, descRESPProto, descRESPSlow, descRESPCommands} {
		ch <- d
	}
}

func (c *respCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.respStats()
	if st == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descRESPClients, prometheus.GaugeValue, float64(st.ConnectedClients))
	ch <- prometheus.MustNewConstMetric(descRESPConns, prometheus.CounterValue, float64(st.Connections))
	ch <- prometheus.MustNewConstMetric(descRESPRejected, prometheus.CounterValue, float64(st.Rejected))
	ch <- prometheus.MustNewConstMetric(descRESPShed, prometheus.CounterValue, float64(st.Shed))
	ch <- prometheus.MustNewConstMetric(descRESPProto, prometheus.CounterValue, float64(st.ProtocolErrors))
	ch <- prometheus.MustNewConstMetric(descRESPSlow, prometheus.CounterValue, float64(st.SlowClients))
	for name, n := range st.CommandCalls {
		ch <- prometheus.MustNewConstMetric(descRESPCommands, prometheus.CounterValue, float64(n), name)
	}
}
