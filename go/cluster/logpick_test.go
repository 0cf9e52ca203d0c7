package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

// TestLogStoreUpgrade: a node whose directory holds a bbolt Raft log (as
// every node did before the engine store became the default) keeps using
// it when no store is named, and a node asked for the other store than
// the one it holds is refused with an error naming the flag; a new node
// gets the engine store.
func TestLogStoreUpgrade(t *testing.T) {
	store := ""
	c := newTestCluster(t, func(cfg *Config) { cfg.LogStore = store })
	files := func(id string) (bolt, engine bool) {
		dir := filepath.Join(c.nodes[id].dir, "raft")
		_, err1 := os.Stat(filepath.Join(dir, boltLogFile))
		_, err2 := os.Stat(filepath.Join(dir, engineLogDir))
		return err1 == nil, err2 == nil
	}

	store = LogStoreBolt // the old default
	c.start("old", true)
	for i := 0; i < 10; i++ {
		c.write(fmt.Sprintf("k%d", i), "v")
	}
	c.stop("old")

	store = "" // upgraded binary, no flag
	tn := c.start("old", false)
	if got := tn.node.cfg.LogStore; got != LogStoreBolt {
		t.Fatalf("a node holding a bbolt log opened store %q", got)
	}
	c.write("k10", "after upgrade")
	if got := scan(t, tn); !strings.Contains(got, `"k0"="v"`) || !strings.Contains(got, `"k10"="after upgrade"`) {
		t.Fatalf("contents after upgrade:\n%s", got)
	}
	c.stop("old")
	if bolt, engine := files("old"); !bolt || engine {
		t.Fatalf("files after upgrade: bolt %v, engine %v", bolt, engine)
	}

	// Asking for the other store is refused before anything is created.
	eng, err := storage.NewDefaultStorageEngine(storage.Options{Dir: filepath.Join(c.nodes["old"].dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	cfg := testConfig("old", c.nodes["old"].dir, c.nodes["old"].raftAddr)
	cfg.LogStore = LogStoreEngine
	if n, err := Open(cfg, eng); !errors.Is(err, ErrLogStoreMismatch) || !strings.Contains(err.Error(), "--raft-log-store bolt") {
		if n != nil {
			_ = n.Close()
		}
		t.Fatalf("engine store over a bbolt log: %v", err)
	}
	if _, engine := files("old"); engine {
		t.Fatal("the refused open created an engine log")
	}

	// A new node gets the engine store, and then keeps it.
	store = ""
	tn = c.start("new", true)
	if got := tn.node.cfg.LogStore; got != LogStoreEngine {
		t.Fatalf("a new node opened store %q", got)
	}
	c.write("n", "v")
	c.stop("new")
	if bolt, engine := files("new"); bolt || !engine {
		t.Fatalf("files of a new node: bolt %v, engine %v", bolt, engine)
	}
	cfg = testConfig("new", c.nodes["new"].dir, c.nodes["new"].raftAddr)
	cfg.LogStore = LogStoreBolt
	eng2, err := storage.NewDefaultStorageEngine(storage.Options{Dir: filepath.Join(c.nodes["new"].dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := Open(cfg, eng2); !errors.Is(err, ErrLogStoreMismatch) || !strings.Contains(err.Error(), "--raft-log-store engine") {
		if n != nil {
			_ = n.Close()
		}
		t.Fatalf("bolt store over an engine log: %v", err)
	}
	if err := eng2.Close(); err != nil {
		t.Fatal(err)
	}
	store = ""
	tn = c.start("new", false)
	if got := scan(t, tn); !strings.Contains(got, `"n"="v"`) {
		t.Fatalf("contents after restart:\n%s", got)
	}
}
