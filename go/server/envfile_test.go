package server

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestEnvFileListsEveryVariable: deploy/mantisdb.env promises a variable
// for every flag (MANTISDB_DATA_DIR aside: the unit file fixes it).
func TestEnvFileListsEveryVariable(t *testing.T) {
	var help bytes.Buffer
	if _, err := ParseFlags([]string{"-h"}, func(string) (string, bool) { return "", false }, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	env, err := os.ReadFile("../../deploy/mantisdb.env")
	if err != nil {
		t.Fatal(err)
	}
	vars := regexp.MustCompile(`\[\$(MANTISDB_[A-Z_]+)\]`).FindAllStringSubmatch(help.String(), -1)
	if len(vars) < 20 {
		t.Fatalf("found %d variables in --help", len(vars))
	}
	for _, m := range vars {
		if m[1] == "MANTISDB_DATA_DIR" {
			continue
		}
		if !regexp.MustCompile(`(?m)^#?` + m[1] + `=`).Match(env) {
			t.Errorf("deploy/mantisdb.env lacks %s", m[1])
		}
	}
	if !strings.Contains(string(env), "MANTISDB_DATA_DIR") {
		t.Error("deploy/mantisdb.env does not say where MANTISDB_DATA_DIR is set")
	}
}
