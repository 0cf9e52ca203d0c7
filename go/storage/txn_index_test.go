package storage

import (
	"fmt"
	"hash/maphash"
	"testing"
)

// TestTxnHashCollisions: a Txn past txnScan keys indexes its keys by
// hash; keys whose hashes collide are still declared once each and found
// (their bytes tell them apart), and an undeclared key is not found.
// Every key is declared here with the same hash, the worst case no real
// hash produces, so the index is asked directly (find hashes the key).
func TestTxnHashCollisions(t *testing.T) {
	tx := &Txn{index: &txnIndex{}}
	tx.index.reset(3 * txnScan)
	var distinct []string
	for i := range 3 * txnScan {
		k := fmt.Sprintf("k%d", i%(txnScan+5))
		if i < txnScan+5 {
			distinct = append(distinct, k)
		}
		tx.declare([]byte(k), 7)
	}
	if len(tx.keys) != len(distinct) {
		t.Fatalf("%d keys declared, want %d (each once)", len(tx.keys), len(distinct))
	}
	for _, k := range distinct {
		i, _ := tx.index.slot(tx.keys, []byte(k), 7)
		if i < 0 || string(tx.keys[i].key) != k {
			t.Fatalf("slot(%s) = %d", k, i)
		}
	}
	if i, _ := tx.index.slot(tx.keys, []byte("absent"), 7); i >= 0 {
		t.Fatalf("slot(absent) = %d", i)
	}
}

// TestTxnIndexRealHashes: with the hashes Update computes, every declared
// key is found through the index (none collide), duplicates declared
// once, an undeclared key not found.
func TestTxnIndexRealHashes(t *testing.T) {
	seed := maphash.MakeSeed()
	tx := &Txn{index: &txnIndex{}, seed: seed}
	tx.index.reset(3 * txnScan)
	for i := range 3 * txnScan {
		k := []byte(fmt.Sprintf("k%d", i%(2*txnScan)))
		tx.declare(k, maphash.Bytes(seed, k))
	}
	if len(tx.keys) != 2*txnScan {
		t.Fatalf("%d keys declared (want %d)", len(tx.keys), 2*txnScan)
	}
	for i := 2*txnScan - 1; i >= 0; i -= 3 { // out of order: the hint misses
		k := fmt.Sprintf("k%d", i)
		if j := tx.find([]byte(k)); j < 0 || string(tx.keys[j].key) != k {
			t.Fatalf("find(%s) = %d", k, j)
		}
	}
	if j := tx.find([]byte("absent")); j >= 0 {
		t.Fatalf("find(absent) = %d", j)
	}
}
