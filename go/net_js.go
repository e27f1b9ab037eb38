//go:build js && wasm

package wasabi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"syscall/js"
	"time"
	"unsafe"
)

// Listen announces on the local network address ("tcp", "tcp4" or "tcp6";
// "127.0.0.1:8080", ":0" for any free port) and returns a listener.
//
// Under Wasabi the listener is a host socket, granted by --allow-listen;
// elsewhere Listen is net.Listen.
func Listen(network, address string) (net.Listener, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "listen", Net: network, Addr: stringAddr{network, address}, Err: err}
	}
	if err := checkNetwork(network); err != nil {
		return nil, opErr(err)
	}
	v, err := call("listen", network, address)
	if err != nil {
		return nil, opErr(err)
	}
	l := &listener{id: v.Int(), closed: make(chan struct{})}
	l.addr = sockAddr("localAddr", l.id)
	return l, nil
}

// DialContext connects to address on the named network ("tcp", "tcp4" or
// "tcp6"), giving up when ctx is done.
//
// Under Wasabi the connection is a host socket, granted by --allow-connect;
// elsewhere DialContext is (&net.Dialer{}).DialContext.
func DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: stringAddr{network, address}, Err: err}
	}
	if err := checkNetwork(network); err != nil {
		return nil, opErr(err)
	}
	if err := ctx.Err(); err != nil {
		return nil, opErr(err)
	}
	w := newWaiter()
	defer w.release()
	v, err := call("dial", network, address, w.token)
	if err != nil {
		return nil, opErr(err)
	}
	id := v.Int()
	select {
	case r := <-w.ch:
		if r.err != nil {
			return nil, opErr(r.err)
		}
		return newConn(id), nil
	case <-ctx.Done():
		// Closing the socket cancels the dial on the host.
		_, _ = call("close", id)
		return nil, opErr(ctx.Err())
	}
}

// Serve serves HTTP requests on l with handler (http.DefaultServeMux when
// nil) until l is closed.
//
// Under Wasabi, when l comes from Listen, the host serves: it accepts, speaks
// HTTP/1.1 and HTTP/2 and enforces the server's limits in native code, and
// runs only handler in the program. Each request reaches handler as a real
// *http.Request, its body streamed from the client, its Context cancelled
// when the client goes away; the ResponseWriter streams back (Flush and
// trailers work). Hijack returns an error: the connection is the host's
// (use http.Serve on a Listen listener for that). Elsewhere (and for any
// other listener) Serve is http.Serve.
func Serve(l net.Listener, handler http.Handler) error {
	if hl, ok := l.(*listener); ok {
		return serveHost(hl, handler)
	}
	return http.Serve(l, handler)
}

func checkNetwork(network string) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return nil
	}
	return net.UnknownNetworkError(network)
}

// errNoRuntime is returned by every call when the program does not run
// under Wasabi (for example under Node.js).
var errNoRuntime = errors.New("wasabi: networking needs the Wasabi runtime " +
	"(globalThis.wasabi is missing): run this program with `wasabi run`")

// The host's socket interface, globalThis.wasabi.net, found on first use.
var (
	hostOnce sync.Once
	hostNet  js.Value
	hostErr  error
)

func host() (js.Value, error) {
	hostOnce.Do(func() {
		w := js.Global().Get("wasabi")
		if w.Type() != js.TypeObject || w.Get("net").Type() != js.TypeObject {
			hostErr = errNoRuntime
			return
		}
		hostNet = w.Get("net")
		// The callback lives as long as the program: it is never released.
		hostNet.Call("setNotify", js.FuncOf(notify))
	})
	return hostNet, hostErr
}

// call calls a method of the host's socket interface, turning a thrown JS
// error into a Go error.
func call(method string, args ...any) (v js.Value, err error) {
	n, err := host()
	if err != nil {
		return js.Value{}, err
	}
	defer func() {
		if r := recover(); r != nil {
			jsErr, ok := r.(js.Error)
			if !ok {
				panic(r)
			}
			err = newHostError(jsErr.Value)
		}
	}()
	return n.Call(method, args...), nil
}

// hostError is an error the host reported: its message, and the errno its
// POSIX code names, so errors.Is(err, syscall.ECONNREFUSED) and
// errors.Is(err, os.ErrPermission) work as they do natively.
type hostError struct {
	msg   string
	errno syscall.Errno
}

func (e *hostError) Error() string { return e.msg }

func (e *hostError) Unwrap() error {
	if e.errno == 0 {
		return nil
	}
	return e.errno
}

// Timeout reports whether the error is a timeout.
func (e *hostError) Timeout() bool { return e.errno == syscall.ETIMEDOUT }

// Temporary reports whether retrying may succeed (a full socket table).
func (e *hostError) Temporary() bool {
	return e.errno == syscall.EMFILE || e.errno == syscall.EINTR || e.Timeout()
}

var errnoByCode = map[string]syscall.Errno{
	"EACCES":        syscall.EACCES,
	"EADDRINUSE":    syscall.EADDRINUSE,
	"EADDRNOTAVAIL": syscall.EADDRNOTAVAIL,
	"EAFNOSUPPORT":  syscall.EAFNOSUPPORT,
	"EBADF":         syscall.EBADF,
	"ECONNABORTED":  syscall.ECONNABORTED,
	"ECONNREFUSED":  syscall.ECONNREFUSED,
	"ECONNRESET":    syscall.ECONNRESET,
	"EHOSTUNREACH":  syscall.EHOSTUNREACH,
	"EINTR":         syscall.EINTR,
	"EINVAL":        syscall.EINVAL,
	"EIO":           syscall.EIO,
	"EMFILE":        syscall.EMFILE,
	"ENETDOWN":      syscall.ENETDOWN,
	"ENETUNREACH":   syscall.ENETUNREACH,
	"ENOTCONN":      syscall.ENOTCONN,
	"EPIPE":         syscall.EPIPE,
	"ETIMEDOUT":     syscall.ETIMEDOUT,
}

func newHostError(v js.Value) error {
	if v.Type() != js.TypeObject {
		return &hostError{msg: "wasabi: " + v.String()}
	}
	e := &hostError{msg: v.Get("message").String()}
	if code := v.Get("code"); code.Type() == js.TypeString {
		e.errno = errnoByCode[code.String()]
	}
	return e
}

// A waiter is one pending notification from the host: a wait for readiness
// or a dial. The host calls notify with the waiter's token.
type waiter struct {
	token uint64
	ch    chan waitResult
}

type waitResult struct {
	err error
}

var (
	waitersMu sync.Mutex
	waiters   = map[uint64]chan waitResult{}
	lastToken uint64
)

func newWaiter() waiter {
	waitersMu.Lock()
	defer waitersMu.Unlock()
	lastToken++
	w := waiter{token: lastToken, ch: make(chan waitResult, 1)}
	waiters[w.token] = w.ch
	return w
}

func (w waiter) release() {
	waitersMu.Lock()
	delete(waiters, w.token)
	waitersMu.Unlock()
}

// notify is the host's callback: notify(token, error, id, ...), one
// triple per completed wait or dial, every event ready at once in one call.
// It runs on the event goroutine and must not block; a token no one waits
// for any more (a wait that timed out) is ignored.
func notify(_ js.Value, args []js.Value) any {
	for i := 0; i+1 < len(args); i += 3 {
		token := uint64(args[i].Float())
		var r waitResult
		if e := args[i+1]; !e.IsNull() && !e.IsUndefined() {
			r.err = newHostError(e)
		}
		waitersMu.Lock()
		ch := waiters[token]
		delete(waiters, token)
		waitersMu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
	return nil
}

// waitReady parks the calling goroutine until socket id is ready for
// interest ("read" or "write"), the socket is closed, or expired is closed.
func waitReady(id int, interest string, closed, expired <-chan struct{}) error {
	w := newWaiter()
	defer w.release()
	if _, err := call("wait", id, interest, w.token); err != nil {
		return err
	}
	select {
	case r := <-w.ch:
		return r.err
	case <-closed:
		return net.ErrClosed
	case <-expired:
		return os.ErrDeadlineExceeded
	}
}

// sockAddr asks the host for a socket's local or remote address.
func sockAddr(method string, id int) net.Addr {
	v, err := call(method, id)
	if err != nil {
		return &net.TCPAddr{}
	}
	ap, err := netip.ParseAddrPort(v.String())
	if err != nil {
		return &net.TCPAddr{}
	}
	return net.TCPAddrFromAddrPort(ap)
}

// stringAddr is an address as the caller wrote it (for dial errors).
type stringAddr struct{ network, address string }

func (a stringAddr) Network() string { return a.network }
func (a stringAddr) String() string  { return a.address }

// listener is a host listening socket.
type listener struct {
	id        int
	addr      net.Addr
	acceptMu  sync.Mutex
	closeOnce sync.Once
	closed    chan struct{}
}

// Accept waits for and returns the next connection.
func (l *listener) Accept() (net.Conn, error) {
	l.acceptMu.Lock()
	defer l.acceptMu.Unlock()
	for {
		select {
		case <-l.closed:
			return nil, l.opErr(net.ErrClosed)
		default:
		}
		v, err := call("accept", l.id)
		if err != nil {
			return nil, l.opErr(err)
		}
		if !v.IsNull() {
			return newConn(v.Int()), nil
		}
		if err := waitReady(l.id, "read", l.closed, nil); err != nil {
			return nil, l.opErr(err)
		}
	}
}

// Close stops listening; a goroutine blocked in Accept returns net.ErrClosed.
func (l *listener) Close() error {
	err := net.ErrClosed
	l.closeOnce.Do(func() {
		close(l.closed)
		_, err = call("close", l.id)
	})
	if err != nil {
		return l.opErr(err)
	}
	return nil
}

// Addr returns the listener's local address.
func (l *listener) Addr() net.Addr { return l.addr }

func (l *listener) opErr(err error) error {
	return &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: err}
}

// conn is a host TCP connection.
type conn struct {
	id            int
	local, remote net.Addr
	readMu        sync.Mutex
	writeMu       sync.Mutex
	closeOnce     sync.Once
	closed        chan struct{}
	readDeadline  deadline
	writeDeadline deadline
}

func newConn(id int) *conn {
	c := &conn{id: id, closed: make(chan struct{})}
	c.local = sockAddr("localAddr", id)
	c.remote = sockAddr("remoteAddr", id)
	return c
}

// bufAddr is the linear-memory address of b's first byte. The host copies
// to or from it during one synchronous call, while no Go code runs.
func bufAddr(b []byte) uintptr {
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))
}

// ready returns why an operation cannot start: the connection is closed or
// the deadline d (if any) has passed.
func (c *conn) ready(d *deadline) error {
	var expired <-chan struct{}
	if d != nil {
		expired = d.expired()
	}
	select {
	case <-c.closed:
		return net.ErrClosed
	case <-expired:
		return os.ErrDeadlineExceeded
	default:
		return nil
	}
}

// Read reads up to len(b) bytes; io.EOF at the end of the stream.
func (c *conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, c.ready(&c.readDeadline)
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		if err := c.ready(&c.readDeadline); err != nil {
			return 0, c.opErr("read", err)
		}
		v, err := call("read", c.id, bufAddr(b), len(b))
		runtime.KeepAlive(b)
		if err != nil {
			return 0, c.opErr("read", err)
		}
		if v.IsNull() {
			if err := waitReady(c.id, "read", c.closed, c.readDeadline.expired()); err != nil {
				return 0, c.opErr("read", err)
			}
			continue
		}
		if n := v.Int(); n > 0 {
			return n, nil
		}
		return 0, io.EOF
	}
}

// Write writes all of b, unless an error (or the deadline) stops it.
func (c *conn) Write(b []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	written := 0
	for {
		if err := c.ready(&c.writeDeadline); err != nil {
			return written, c.opErr("write", err)
		}
		if written == len(b) {
			return written, nil
		}
		rest := b[written:]
		v, err := call("write", c.id, bufAddr(rest), len(rest))
		runtime.KeepAlive(rest)
		if err != nil {
			return written, c.opErr("write", err)
		}
		if v.IsNull() {
			if err := waitReady(c.id, "write", c.closed, c.writeDeadline.expired()); err != nil {
				return written, c.opErr("write", err)
			}
			continue
		}
		written += v.Int()
	}
}

// Close closes the connection; pending and later calls return net.ErrClosed.
func (c *conn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		close(c.closed)
		_, err = call("close", c.id)
	})
	if err != nil {
		return c.opErr("close", err)
	}
	return nil
}

// CloseWrite shuts down the writing side: the peer reads io.EOF, and this
// side can still read.
func (c *conn) CloseWrite() error {
	if err := c.ready(nil); err != nil {
		return c.opErr("close", err)
	}
	if _, err := call("closeWrite", c.id); err != nil {
		return c.opErr("close", err)
	}
	return nil
}

// LocalAddr returns the local address.
func (c *conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the remote address.
func (c *conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets both the read and the write deadline.
func (c *conn) SetDeadline(t time.Time) error {
	c.readDeadline.set(t)
	c.writeDeadline.set(t)
	return nil
}

// SetReadDeadline sets the deadline for pending and future Read calls.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.readDeadline.set(t)
	return nil
}

// SetWriteDeadline sets the deadline for pending and future Write calls.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.writeDeadline.set(t)
	return nil
}

func (c *conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.local, Addr: c.remote, Err: err}
}

// deadline is a settable point in time with a channel that is closed once
// it has passed; setting it again re-arms it, which wakes or frees the
// calls blocked on it. The zero value has no deadline.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{} // closed when the deadline has passed
	gen   uint64
}

func (d *deadline) channel() chan struct{} {
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	return d.ch
}

// expired returns a channel that is closed once the deadline has passed.
func (d *deadline) expired() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.channel()
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	ch := d.channel()
	select {
	case <-ch:
		ch = make(chan struct{})
		d.ch = ch
	default:
	}
	if t.IsZero() {
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		close(ch)
		return
	}
	gen := d.gen
	d.timer = time.AfterFunc(wait, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen {
			close(ch)
		}
	})
}
