// fs-probe exercises the filesystem a host grants, one behaviour per
// subcommand, printing what the standard library reports.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fs-probe escape|rw|ro|busy|cwd [dir] | open-many dir n")
		os.Exit(2)
	}
	dir := "."
	if len(os.Args) > 2 {
		dir = os.Args[2]
	}
	switch os.Args[1] {
	case "escape":
		escape(dir)
	case "rw":
		readWrite(dir)
	case "ro":
		readOnly(dir)
	case "busy":
		busy(dir)
	case "open-many":
		openMany(dir, os.Args[3])
	case "cwd":
		wd, err := os.Getwd()
		fmt.Println("cwd:", wd, err)
		entries, err := os.ReadDir("/")
		fmt.Println("root:", names(entries), err)
	default:
		fmt.Fprintln(os.Stderr, "unknown subcommand", os.Args[1])
		os.Exit(2)
	}
}

// openMany opens dir n times and holds every file open: the open-files
// cap decides how far it gets.
func openMany(dir, count string) {
	n, err := strconv.Atoi(count)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open-many: bad count", count)
		os.Exit(2)
	}
	var held []*os.File
	for i := 1; i <= n; i++ {
		f, err := os.Open(dir)
		if err != nil {
			fmt.Printf("open %d: %v\n", i, err)
			os.Exit(1)
		}
		held = append(held, f)
	}
	fmt.Printf("%d open\n", len(held))
}

// busy runs two goroutines that loop on file calls while the main one
// sleeps: every goroutine must get its turn, as under Node.js.
func busy(dir string) {
	var done atomic.Bool
	var counts [2]atomic.Int64
	var wg sync.WaitGroup
	for i := range counts {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for !done.Load() {
				if _, err := os.Stat(dir); err != nil {
					fmt.Println("stat:", err)
					return
				}
				counts[i].Add(1)
			}
		}(i)
	}
	time.Sleep(100 * time.Millisecond)
	done.Store(true)
	wg.Wait()
	fmt.Println("both looped:", counts[0].Load() > 0 && counts[1].Load() > 0)
}

func names(entries []fs.DirEntry) string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return strings.Join(out, ",")
}

// report prints the outcome of one attempt: the error and its errno.
func report(what string, err error) {
	var errno interface{ Error() string }
	if err == nil {
		fmt.Printf("%s: allowed\n", what)
		return
	}
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		errno = pe.Err
	} else if le := (*os.LinkError)(nil); errors.As(err, &le) {
		errno = le.Err
	} else {
		errno = err
	}
	fmt.Printf("%s: %s\n", what, errno.Error())
}

func escape(dir string) {
	_, err := os.ReadFile("/etc/passwd")
	report("absolute path outside", err)
	_, err = os.ReadFile(filepath.Join(dir, "../../../../../etc/passwd"))
	report("dot-dot out of the mount", err)
	_, err = os.ReadFile(dir + "/../secret.txt")
	report("dot-dot to a sibling", err)
	_, err = os.ReadFile(filepath.Join(dir, "out-rel", "secret.txt"))
	report("relative symlink out", err)
	_, err = os.ReadFile(filepath.Join(dir, "out-abs"))
	report("absolute symlink out", err)
	_, err = os.ReadDir(filepath.Join(dir, "out-rel"))
	report("listing through a symlink out", err)
	report("new symlink to /etc/passwd", os.Symlink("/etc/passwd", filepath.Join(dir, "new-abs")))
	report("new symlink climbing out", os.Symlink("../../secret.txt", filepath.Join(dir, "new-rel")))
	report("write outside", os.WriteFile("/tmp-outside.txt", []byte("x"), 0o644))
	b, err := os.ReadFile(filepath.Join(dir, "inside.txt"))
	report("reading inside", err)
	fmt.Printf("inside.txt: %q\n", b)
}

func readWrite(dir string) {
	check := func(what string, err error) {
		if err != nil {
			fmt.Printf("%s: %v\n", what, err)
			os.Exit(1)
		}
	}
	p := filepath.Join(dir, "sub")
	check("mkdir", os.MkdirAll(filepath.Join(p, "deep"), 0o755))
	f, err := os.Create(filepath.Join(p, "a.txt"))
	check("create", err)
	_, err = f.WriteString("hello, files\n")
	check("write", err)
	_, err = f.WriteAt([]byte("H"), 0)
	check("pwrite", err)
	check("sync", f.Sync())
	st, err := f.Stat()
	check("fstat", err)
	fmt.Println("size:", st.Size(), "mode:", st.Mode())
	check("close", f.Close())
	b, err := os.ReadFile(filepath.Join(p, "a.txt"))
	check("read", err)
	fmt.Printf("content: %q\n", b)
	f, err = os.Open(filepath.Join(p, "a.txt"))
	check("open", err)
	buf := make([]byte, 5)
	_, err = f.ReadAt(buf, 7)
	check("pread", err)
	fmt.Printf("pread: %q\n", buf)
	f.Close()
	check("rename", os.Rename(filepath.Join(p, "a.txt"), filepath.Join(p, "b.txt")))
	check("truncate", os.Truncate(filepath.Join(p, "b.txt"), 5))
	check("chmod", os.Chmod(filepath.Join(p, "b.txt"), 0o600))
	check("symlink", os.Symlink("b.txt", filepath.Join(p, "link")))
	target, err := os.Readlink(filepath.Join(p, "link"))
	check("readlink", err)
	st, err = os.Stat(filepath.Join(p, "link"))
	check("stat", err)
	fmt.Println("link:", target, "size:", st.Size(), "mode:", st.Mode())
	entries, err := os.ReadDir(p)
	check("readdir", err)
	fmt.Println("entries:", names(entries))
	var walked []string
	check("walk", filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, path)
		walked = append(walked, rel)
		return err
	}))
	sort.Strings(walked)
	fmt.Println("walked:", strings.Join(walked, " "))
	tmp, err := os.MkdirTemp(dir, "t-")
	check("mkdirtemp", err)
	check("removeall", os.RemoveAll(tmp))
	check("remove", os.RemoveAll(p))
	_, err = os.Stat(p)
	fmt.Println("gone:", errors.Is(err, fs.ErrNotExist))
}

func readOnly(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "inside.txt"))
	report("reading", err)
	fmt.Printf("inside.txt: %q\n", b)
	report("writing", os.WriteFile(filepath.Join(dir, "inside.txt"), []byte("changed"), 0o644))
	report("creating", os.WriteFile(filepath.Join(dir, "new.txt"), []byte("new"), 0o644))
	report("removing", os.Remove(filepath.Join(dir, "inside.txt")))
	report("mkdir", os.Mkdir(filepath.Join(dir, "d"), 0o755))
}
