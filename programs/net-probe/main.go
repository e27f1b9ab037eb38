// Command net-probe exercises one networking behaviour per subcommand, for
// Wasabi's tests; every subcommand runs natively too.
//
//	net-probe transfer ADDR BYTES   dial, send BYTES while reading to EOF, print checksums
//	net-probe deadline ADDR         dial a silent server; a read deadline must end the read
//	net-probe read ADDR             dial and read to the end; print how it ended
//	net-probe listen ADDR           listen, print the address, close
//	net-probe accept-close          close a listener while a goroutine accepts
//	net-probe hold ADDR HOW         dial, send "hello", then end with the connection open:
//	                                HOW is exit, panic, or grow (allocate until a memory limit)
//	net-probe many ADDR N           hold N connections to ADDR open at once
//	net-probe serve-http ADDR       serve HTTP: each answer describes the request
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"wasabi.dev/go"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: net-probe SUBCOMMAND ARGS...")
	}
	args := os.Args[2:]
	arg := func(i int) string {
		if i >= len(args) {
			fail("missing argument")
		}
		return args[i]
	}
	switch os.Args[1] {
	case "transfer":
		n, err := strconv.Atoi(arg(1))
		check(err)
		transfer(arg(0), n)
	case "deadline":
		deadline(arg(0))
	case "read":
		c, err := wasabi.Dial("tcp", arg(0))
		check(err)
		n, err := io.Copy(io.Discard, c)
		fmt.Printf("read %d bytes, then: %v\n", n, err)
	case "listen":
		l, err := wasabi.Listen("tcp", arg(0))
		check(err)
		fmt.Println("listening on", l.Addr())
		check(l.Close())
	case "accept-close":
		acceptClose()
	case "hold":
		c, err := wasabi.Dial("tcp", arg(0))
		check(err)
		_, err = c.Write([]byte("hello"))
		check(err)
		switch arg(1) {
		case "exit":
			os.Exit(3)
		case "panic":
			panic("giving up with a connection open")
		case "grow":
			var hoard [][]byte
			for {
				hoard = append(hoard, make([]byte, 1<<20))
			}
		}
		fail("unknown way to end: " + arg(1))
	case "many":
		n, err := strconv.Atoi(arg(1))
		check(err)
		var conns []net.Conn
		for i := 0; i < n; i++ {
			c, err := wasabi.Dial("tcp", arg(0))
			if err != nil {
				fail(fmt.Sprintf("connection %d: %v", i+1, err))
			}
			conns = append(conns, c)
		}
		fmt.Printf("%d connections open\n", len(conns))
	case "serve-http":
		fmt.Println("serving on", arg(0))
		check(wasabi.ListenAndServe(arg(0), http.HandlerFunc(describe)))
	default:
		fail("unknown subcommand " + os.Args[1])
	}
}

// pattern is the deterministic byte stream both sides send.
func pattern(i int) byte { return byte(i*7 + i/251) }

func transfer(addr string, size int) {
	c, err := wasabi.DialContext(context.Background(), "tcp", addr)
	check(err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h := sha256.New()
		buf := make([]byte, 64<<10)
		for sent := 0; sent < size; {
			chunk := buf[:min(len(buf), size-sent)]
			for i := range chunk {
				chunk[i] = pattern(sent + i)
			}
			h.Write(chunk)
			_, err := c.Write(chunk)
			check(err)
			sent += len(chunk)
		}
		check(c.(interface{ CloseWrite() error }).CloseWrite())
		fmt.Printf("sent %d sha256 %x\n", size, h.Sum(nil))
	}()
	h := sha256.New()
	n, err := io.Copy(h, c)
	check(err)
	wg.Wait()
	fmt.Printf("received %d sha256 %x\n", n, h.Sum(nil))
	check(c.Close())
}

func deadline(addr string) {
	c, err := wasabi.Dial("tcp", addr)
	check(err)
	check(c.SetReadDeadline(time.Now().Add(200 * time.Millisecond)))
	started := time.Now()
	_, err = c.Read(make([]byte, 16))
	var ne net.Error
	timeout := errors.As(err, &ne) && ne.Timeout()
	fmt.Printf("read ended after the deadline: %v; timeout: %v; deadline exceeded: %v\n",
		time.Since(started) >= 150*time.Millisecond, timeout, errors.Is(err, os.ErrDeadlineExceeded))
	// A deadline in the past wakes a read that is already blocked.
	check(c.SetReadDeadline(time.Time{}))
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 16))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	check(c.SetReadDeadline(time.Unix(1, 0)))
	err = <-done
	fmt.Printf("blocked read woken by a past deadline: %v\n", errors.Is(err, os.ErrDeadlineExceeded))
	// Cleared, the connection reads again.
	check(c.SetReadDeadline(time.Time{}))
	_, err = c.Write([]byte("ping"))
	check(err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	check(err)
	fmt.Printf("after clearing the deadline: %s\n", buf)
}

// describe answers with the request's method, path and body size.
func describe(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("X-Served-By", "net-probe")
	fmt.Fprintf(w, "%s %s with %d bytes\n", r.Method, r.URL.Path, n)
}

func acceptClose() {
	l, err := wasabi.Listen("tcp", "127.0.0.1:0")
	check(err)
	done := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	check(l.Close())
	err = <-done
	fmt.Printf("accept after close: net.ErrClosed: %v\n", errors.Is(err, net.ErrClosed))
}

func check(err error) {
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "net-probe:", msg)
	os.Exit(1)
}
