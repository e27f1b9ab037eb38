package wasabi_test

// These tests run natively (go test ./...) and under Wasabi, which CI runs
// with --allow-listen=127.0.0.1 --allow-connect=127.0.0.1.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"wasabi.dev/go"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := wasabi.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// echoServer accepts connections on l and echoes them until EOF, then
// half-closes.
func echoServer(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
			c.(interface{ CloseWrite() error }).CloseWrite()
		}()
	}
}

// dialEcho starts an echo server and returns a connection to it (closed
// when the test ends) and its listener.
func dialEcho(t *testing.T) (net.Conn, net.Listener) {
	t.Helper()
	l := listen(t)
	go echoServer(l)
	c, err := wasabi.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, l
}

func TestEchoWithHalfClose(t *testing.T) {
	c, l := dialEcho(t)
	if c.RemoteAddr().String() != l.Addr().String() {
		t.Errorf("RemoteAddr = %v, want %v", c.RemoteAddr(), l.Addr())
	}
	msg := []byte("hello, wasabi")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != string(msg) {
		t.Fatalf("ReadAll = %q, %v; want %q", got, err, msg)
	}
}

func TestConcurrentConnections(t *testing.T) {
	l := listen(t)
	go echoServer(l)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := wasabi.Dial("tcp", l.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			want := fmt.Sprintf("connection %d", i)
			if _, err := c.Write([]byte(want)); err != nil {
				errs <- err
				return
			}
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
				errs <- fmt.Errorf("read %q, %v; want %q", got, err, want)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestReadDeadline(t *testing.T) {
	c, _ := dialEcho(t)
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read = %v, want a timeout", err)
	}
	c.SetReadDeadline(time.Time{})
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("Read after clearing the deadline: %v", err)
	}
}

func TestCloseUnblocksReadAndAccept(t *testing.T) {
	c, _ := dialEcho(t)
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v, want net.ErrClosed", err)
	}
	if err := c.Close(); err == nil {
		t.Error("a second Close succeeded")
	}

	l2, err := wasabi.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := l2.Accept()
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	l2.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
	}
}

func TestDialRefused(t *testing.T) {
	l, err := wasabi.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = wasabi.Dial("tcp", addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial to a closed port = %v, want ECONNREFUSED", err)
	}
}

// TestDialByName dials a host name that resolves to this machine's
// loopback address ($WASABI_TEST_HOSTNAME, set by Wasabi's own tests with
// the grant that names it): under Wasabi the runtime resolves it, for
// js/wasm and wasip1 alike.
func TestDialByName(t *testing.T) {
	name := os.Getenv("WASABI_TEST_HOSTNAME")
	if name == "" {
		t.Skip("$WASABI_TEST_HOSTNAME names no host to resolve")
	}
	l := listen(t)
	defer l.Close()
	go echoServer(l)
	_, port, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := wasabi.Dial("tcp4", net.JoinHostPort(name, port))
	if err != nil {
		t.Fatalf("Dial %s: %v", name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("by name")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "by name" {
		t.Fatalf("echo = %q, %v", buf, err)
	}
}

func TestDialContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := wasabi.DialContext(ctx, "tcp", "127.0.0.1:1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("DialContext with a cancelled context = %v", err)
	}
}

func TestUnsupportedNetwork(t *testing.T) {
	if _, err := wasabi.Dial("tcp7", "127.0.0.1:53"); err == nil {
		t.Fatal("dialing an unknown network succeeded")
	}
}

func TestHTTPThroughRoundTripper(t *testing.T) {
	l := listen(t)
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "you asked for %s", r.URL.Path)
	}))
	rt := &wasabi.RoundTripper{}
	defer rt.CloseIdleConnections()
	client := &http.Client{Transport: rt}
	for i := 0; i < 10; i++ {
		resp, err := client.Get(fmt.Sprintf("http://%s/%d", l.Addr(), i))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("you asked for /%d", i); err != nil || string(body) != want {
			t.Fatalf("body = %q, %v; want %q", body, err, want)
		}
	}
}

func TestListenAndServe(t *testing.T) {
	// Find a free port, then serve on it.
	l, err := wasabi.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	go wasabi.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served")
	}))
	client := &http.Client{Transport: &wasabi.RoundTripper{}}
	var lastErr error
	for attempt := 0; attempt < 100; attempt++ {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			lastErr = err
			time.Sleep(10 * time.Millisecond)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "served" {
			t.Fatalf("body = %q", body)
		}
		return
	}
	t.Fatalf("the server never answered: %v", lastErr)
}
