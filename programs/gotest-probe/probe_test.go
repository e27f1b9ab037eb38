// Package probe is run by `wasabi go-exec` in Wasabi's tests: each test
// checks one promise go-exec makes to a Go test binary.
package probe

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var mustFail = flag.Bool("must-fail", false, "make TestFailOnRequest fail")

// The package directory is the working directory, at its own path, and
// its testdata is readable.
func TestWorkingDirectory(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if want := os.Getenv("PWD"); want != "" && wd != want {
		t.Fatalf("working directory %q, want $PWD %q", wd, want)
	}
	if !strings.HasSuffix(wd, "gotest-probe") {
		t.Fatalf("working directory %q is not the package's", wd)
	}
	b, err := os.ReadFile("testdata/greeting.txt")
	if err != nil || string(b) != "hello from testdata\n" {
		t.Fatalf("testdata: %q, %v", b, err)
	}
}

// os.TempDir is private, writable and empty at the start.
func TestTempDir(t *testing.T) {
	if got := os.TempDir(); got != "/tmp" {
		t.Fatalf("os.TempDir() = %q", got)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/tmp")
	if err != nil || len(entries) != 1 {
		t.Fatalf("/tmp holds %d entries (%v), want only this test's", len(entries), err)
	}
}

// The environment go test sets arrives.
func TestEnvironment(t *testing.T) {
	if os.Getenv("WASABI_PROBE") != "passed-through" {
		t.Fatalf("WASABI_PROBE = %q", os.Getenv("WASABI_PROBE"))
	}
}

// Fails when asked, so the caller can check the exit code.
func TestFailOnRequest(t *testing.T) {
	if *mustFail {
		t.Fatal("failing on request")
	}
}
