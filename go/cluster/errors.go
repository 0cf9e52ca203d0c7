package cluster

import "errors"

// Sentinel errors of the cluster package.  Every error that means "try
// again, maybe elsewhere" wraps ErrUnavailable, so a caller (the HTTP
// server) maps them with one errors.Is.
var (
	// ErrUnavailable: the cluster cannot serve the request now (no
	// leader, leadership lost, a timeout).  Wrapped by the errors below.
	ErrUnavailable = errors.New("mantisdb cluster: unavailable")
	// ErrNotLeader: a write or a linearizable read reached a follower;
	// the caller redirects to Node.LeaderHTTP.
	ErrNotLeader = wrap("not the leader")
	// ErrNoLeader: no leader is known (an election is running, or this
	// node is in a minority partition).
	ErrNoLeader = wrap("no leader")
	// ErrUnknownOutcome: a write was handed to Raft but its fate is not
	// known (leadership was lost or the wait timed out before it was
	// applied here).  It may or may not be applied; retrying a put or a
	// delete is safe, since every write in the log is idempotent.
	ErrUnknownOutcome = wrap("write outcome unknown (leadership lost or timed out); it may have been applied")
	// ErrTryAgain: a read-modify-write could not confirm, before it read,
	// that this leader's engine holds every write that may precede its
	// own (update.go, settle), or its entry was appended in a term other
	// than the one it read in, so every replica skipped its writes
	// (update.go, point 0); nothing was written, so retrying is safe.
	ErrTryAgain = wrap("read-modify-write not applied: leadership could not be confirmed, or changed, between its read and its write; nothing was written, retry")
	// ErrClosed: the node was closed.
	ErrClosed = errors.New("mantisdb cluster: node closed")
	// ErrReservedKey: the key lies in the prefix the cluster keeps for its
	// own state (ReservedPrefix).
	ErrReservedKey = errors.New("mantisdb cluster: key in the reserved prefix")
	// ErrBadEntry: a Raft log entry or snapshot failed to decode.
	ErrBadEntry = errors.New("mantisdb cluster: malformed log entry or snapshot")
	// ErrApplyFailed: the engine refused a committed entry (an I/O error
	// made it read-only); the node stops applying and must be restarted,
	// after which it replays from the last index it applied.
	ErrApplyFailed = errors.New("mantisdb cluster: engine failed to apply a committed entry")
	// ErrNotEmpty: a node with no Raft state yet was started over an
	// engine that holds data; a new member must start empty (it gets the
	// cluster's data from Raft).  Seeding a cluster from an existing
	// database is not supported.
	ErrNotEmpty = errors.New("mantisdb cluster: the data directory holds data but no Raft state; start a new node on an empty data directory")
	// ErrUnknownMember: RemoveMember of an ID that is not in the
	// configuration.
	ErrUnknownMember = errors.New("mantisdb cluster: no such member")
	// ErrLastVoter: RemoveMember of the configuration's only voter, which
	// Raft refuses (a cluster needs one).
	ErrLastVoter = errors.New("mantisdb cluster: the only voting member cannot be removed; add another first")
	// ErrLogStoreMismatch: Config.LogStore names a Raft log store other
	// than the one the node's directory already holds.
	ErrLogStoreMismatch = errors.New("mantisdb cluster: the Raft directory holds the other log store")
	// ErrConfig: invalid Config.
	ErrConfig = errors.New("mantisdb cluster: invalid configuration")
)

type unavailable struct{ msg string }

func (e *unavailable) Error() string { return "mantisdb cluster: " + e.msg }
func (e *unavailable) Unwrap() error { return ErrUnavailable }

func wrap(msg string) error { return &unavailable{msg} }
