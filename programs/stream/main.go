// Command stream moves data through files and standard output in ordinary
// 32 KiB writes and reads, far more of it than any memory limit: a program
// that streams must work for any size.
//
//	stream stdout MIB         writes MIB mebibytes to standard output
//	stream file PATH MIB      writes MIB mebibytes to PATH, reads them back,
//	                          and prints their SHA-256
package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"strconv"
)

const chunk = 32 << 10

func fill(buf []byte, i int) {
	for j := range buf {
		buf[j] = byte(i + j)
	}
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: stream stdout MIB | stream file PATH MIB")
		os.Exit(2)
	}
	mib := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "not a number:", s)
			os.Exit(2)
		}
		return n
	}
	buf := make([]byte, chunk)
	switch os.Args[1] {
	case "stdout":
		n := mib(os.Args[2]) << 20 / chunk
		for i := 0; i < n; i++ {
			fill(buf, i)
			if _, err := os.Stdout.Write(buf); err != nil {
				fmt.Fprintln(os.Stderr, "write:", err)
				os.Exit(1)
			}
		}
	case "file":
		if len(os.Args) < 4 {
			os.Exit(2)
		}
		path, n := os.Args[2], mib(os.Args[3])<<20/chunk
		f, err := os.Create(path)
		if err != nil {
			fmt.Println("create:", err)
			os.Exit(1)
		}
		written := sha256.New()
		for i := 0; i < n; i++ {
			fill(buf, i)
			written.Write(buf)
			if _, err := f.Write(buf); err != nil {
				fmt.Println("write:", err)
				os.Exit(1)
			}
		}
		if err := f.Close(); err != nil {
			fmt.Println("close:", err)
			os.Exit(1)
		}
		f, err = os.Open(path)
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(1)
		}
		read := sha256.New()
		got, err := io.CopyBuffer(read, f, buf)
		if err != nil {
			fmt.Println("read:", err)
			os.Exit(1)
		}
		fmt.Printf("wrote %x\nread  %x (%d bytes)\n", written.Sum(nil), read.Sum(nil), got)
	default:
		os.Exit(2)
	}
}
