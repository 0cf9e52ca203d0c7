// machine.go -- the facts of the machine a result file was measured on.
// Ratios are only ever taken between rows of one file, so results from
// two machines never meet in one ratio.
package harness

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// Machine describes where a result file was measured.
type Machine struct {
	Hostname    string `json:"hostname"`
	CPUModel    string `json:"cpu_model"`
	Cores       int    `json:"cores"`
	MemoryBytes int64  `json:"memory_bytes"`
	Kernel      string `json:"kernel"`
	OS          string `json:"os"`
	GoVersion   string `json:"go_version"`
	GCCVersion  string `json:"gcc_version"`
	RustVersion string `json:"rustc_version,omitempty"`
	Redis       string `json:"redis_version,omitempty"`
	GitCommit   string `json:"git_commit,omitempty"`
}

// DescribeMachine gathers the facts; a fact it cannot read stays empty.
func DescribeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	m.Hostname, _ = os.Hostname()
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		var n int64
		for _, c := range strings.Fields(kb)[0] {
			n = n*10 + int64(c-'0')
		}
		m.MemoryBytes = n * 1024
	}
	m.Kernel = firstLine("uname", "-sr")
	m.OS = prettyOS()
	m.GCCVersion = firstLine("gcc", "--version")
	m.RustVersion = firstLine("rustc", "--version")
	m.Redis = firstLine("redis-server", "--version")
	m.GitCommit = firstLine("git", "rev-parse", "--short", "HEAD")
	if d := firstLine("git", "status", "--porcelain", "--untracked-files=no"); d != "" && m.GitCommit != "" {
		m.GitCommit += "-dirty"
	}
	return m
}

func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

func prettyOS() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}
