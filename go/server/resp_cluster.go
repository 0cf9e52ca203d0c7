// resp_cluster.go -- what the RESP listener needs from cluster mode
// (resp.Cluster): the node's role and leader, the read barrier, and the
// replication state ROLE and INFO report, the followers' offsets fetched
// as GET /api/v1/cluster fetches them.
package server

import (
	"context"
	"sort"
	"sync"

	"github.com/mantisdb/mantisdb/go/resp"
)

// respCluster is the resp.Cluster of this server, nil on a single node.
func (s *Server) respCluster() resp.Cluster {
	if s.cluster == nil {
		return nil
	}
	return respNode{s}
}

type respNode struct{ s *Server }

func (r respNode) IsLeader() bool                        { return r.s.cluster.IsLeader() }
func (r respNode) LeaderRESP() (string, string)          { return r.s.cluster.LeaderRESP() }
func (r respNode) ReadBarrier(ctx context.Context) error { return r.s.cluster.ReadBarrier(ctx) }

// Replication reads the node's status; on the leader it asks every
// follower for its applied index (in parallel, within ctx) and lists
// those that answered.
func (r respNode) Replication(ctx context.Context) resp.Replication {
	st := r.s.cluster.Status()
	rep := resp.Replication{
		Leader: st.State == "Leader", LeaderID: st.LeaderID,
		Term: st.Term, Commit: st.CommitIndex, Applied: st.AppliedIndex,
	}
	for _, m := range st.Members {
		if m.ID == st.LeaderID {
			rep.LeaderRESP = m.RESPAddr
		}
	}
	if !rep.Leader {
		return rep
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range st.Members {
		if m.ID == st.ID {
			continue
		}
		addr := m.RESPAddr
		if addr == "" {
			addr = m.HTTPAddr
		}
		wg.Add(1)
		go func(id, httpAddr, addr string) {
			defer wg.Done()
			applied, err := r.s.fetchApplied(ctx, httpAddr)
			if err != nil {
				return // not connected: Redis lists only connected replicas
			}
			mu.Lock()
			rep.Replicas = append(rep.Replicas, resp.Replica{ID: id, Addr: addr, Applied: applied})
			mu.Unlock()
		}(m.ID, m.HTTPAddr, addr)
	}
	wg.Wait()
	sort.Slice(rep.Replicas, func(i, j int) bool { return rep.Replicas[i].ID < rep.Replicas[j].ID })
	return rep
}
