//go:build js && wasm

package wasabi

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"
	"unsafe"
)

// The host's sockets, through the runtime's own imports (module "wasabi",
// see host_js.go): ids, addresses and lengths, never JS values.

//go:wasmimport wasabi sock_listen
func hostSockListen(network unsafe.Pointer, networkLen int32, address unsafe.Pointer, addressLen int32) int32

//go:wasmimport wasabi sock_dial
func hostSockDial(network unsafe.Pointer, networkLen int32, address unsafe.Pointer, addressLen int32) int32

//go:wasmimport wasabi sock_connected
func hostSockConnected(id int32) int32

//go:wasmimport wasabi sock_accept
func hostSockAccept(listener int32) int32

//go:wasmimport wasabi sock_read
func hostSockRead(id int32, buf unsafe.Pointer, size int32) int32

//go:wasmimport wasabi sock_write
func hostSockWrite(id int32, buf unsafe.Pointer, size int32) int32

//go:wasmimport wasabi sock_close_write
func hostSockCloseWrite(id int32) int32

//go:wasmimport wasabi sock_close
func hostSockClose(id int32) int32

//go:wasmimport wasabi sock_addr
func hostSockAddr(id, peer int32, buf unsafe.Pointer, size int32) int32

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
	if err := startHost(); err != nil {
		return nil, opErr(err)
	}
	id := hostSockListen(strPtr(network), int32(len(network)), strPtr(address), int32(len(address)))
	if id < 0 {
		return nil, opErr(socketError(id))
	}
	l := &listener{id: id, waits: register(id), closed: make(chan struct{})}
	l.addr = sockAddr(id, false)
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
	if err := startHost(); err != nil {
		return nil, opErr(err)
	}
	id := hostSockDial(strPtr(network), int32(len(network)), strPtr(address), int32(len(address)))
	if id < 0 {
		return nil, opErr(socketError(id))
	}
	waits := register(id)
	for {
		switch r := hostSockConnected(id); r {
		case 0:
			return newConn(id, waits), nil
		case resultAgain:
		default:
			// The host has closed the failed dial's id.
			unregister(id)
			return nil, opErr(socketError(r))
		}
		select {
		case <-waits.writable:
		case <-ctx.Done():
			// Closing the socket cancels the dial on the host.
			hostSockClose(id)
			unregister(id)
			return nil, opErr(ctx.Err())
		}
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

// strPtr is the address of s's bytes, for the duration of one import call.
func strPtr(s string) unsafe.Pointer {
	return unsafe.Pointer(unsafe.StringData(s))
}

// socketWaits is how the goroutines waiting on one socket are woken: the
// host's tokens for it signal these (buffered, so a token that comes before
// the wait is kept; a stale one only makes a call look again).
type socketWaits struct {
	readable chan struct{}
	writable chan struct{}
}

// sockets maps the ids of open sockets to their waits.
var sockets struct {
	mu   sync.Mutex
	byID map[int32]*socketWaits
}

// register makes the waits of a new socket id.
func register(id int32) *socketWaits {
	w := &socketWaits{readable: make(chan struct{}, 1), writable: make(chan struct{}, 1)}
	sockets.mu.Lock()
	if sockets.byID == nil {
		sockets.byID = map[int32]*socketWaits{}
	}
	sockets.byID[id] = w
	sockets.mu.Unlock()
	return w
}

// unregister forgets a closed socket id (the host may reuse it).
func unregister(id int32) {
	sockets.mu.Lock()
	delete(sockets.byID, id)
	sockets.mu.Unlock()
}

// deliverSocket wakes what waits for a socket's token.
func deliverSocket(kind int, id int32) {
	sockets.mu.Lock()
	w := sockets.byID[id]
	sockets.mu.Unlock()
	if w == nil {
		return
	}
	if kind == tokenSocketReadable {
		signal(w.readable)
	} else {
		signal(w.writable)
	}
}

// sockAddr asks the host for a socket's local or remote address.
func sockAddr(id int32, peer bool) net.Addr {
	var which int32
	if peer {
		which = 1
	}
	var buf [64]byte
	n := hostSockAddr(id, which, ptr(buf[:]), int32(len(buf)))
	if n < 0 || int(n) > len(buf) {
		return &net.TCPAddr{}
	}
	ap, err := netip.ParseAddrPort(string(buf[:n]))
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
	id        int32
	waits     *socketWaits
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
		r := hostSockAccept(l.id)
		if r >= 0 {
			return newConn(r, register(r)), nil
		}
		if r != resultAgain {
			return nil, l.opErr(socketError(r))
		}
		select {
		case <-l.waits.readable:
		case <-l.closed:
			return nil, l.opErr(net.ErrClosed)
		}
	}
}

// Close stops listening; a goroutine blocked in Accept returns net.ErrClosed.
func (l *listener) Close() error {
	err := net.ErrClosed
	l.closeOnce.Do(func() {
		close(l.closed)
		err = closeSocket(l.id)
	})
	if err != nil {
		return l.opErr(err)
	}
	return nil
}

// closeSocket closes socket id on the host and forgets its waits.
func closeSocket(id int32) error {
	r := hostSockClose(id)
	unregister(id)
	if r != 0 {
		return socketError(r)
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
	id            int32
	waits         *socketWaits
	local, remote net.Addr
	readMu        sync.Mutex
	writeMu       sync.Mutex
	closeOnce     sync.Once
	closed        chan struct{}
	readDeadline  deadline
	writeDeadline deadline
}

func newConn(id int32, waits *socketWaits) *conn {
	c := &conn{id: id, waits: waits, closed: make(chan struct{})}
	c.local = sockAddr(id, false)
	c.remote = sockAddr(id, true)
	return c
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

// park waits for ch (the host's token), the connection's close, or the
// deadline d.
func (c *conn) park(ch chan struct{}, d *deadline) error {
	select {
	case <-ch:
		return nil
	case <-c.closed:
		return net.ErrClosed
	case <-d.expired():
		return os.ErrDeadlineExceeded
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
		r := hostSockRead(c.id, ptr(b), int32(min(len(b), maxTransfer)))
		switch {
		case r > 0:
			return int(r), nil
		case r == 0:
			return 0, io.EOF
		case r != resultAgain:
			return 0, c.opErr("read", socketError(r))
		}
		if err := c.park(c.waits.readable, &c.readDeadline); err != nil {
			return 0, c.opErr("read", err)
		}
	}
}

// maxTransfer is the most bytes one call moves (the host's bound too).
const maxTransfer = 1 << 30

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
		r := hostSockWrite(c.id, ptr(rest), int32(min(len(rest), maxTransfer)))
		if r >= 0 {
			written += int(r)
			continue
		}
		if r != resultAgain {
			return written, c.opErr("write", socketError(r))
		}
		if err := c.park(c.waits.writable, &c.writeDeadline); err != nil {
			return written, c.opErr("write", err)
		}
	}
}

// Close closes the connection; pending and later calls return net.ErrClosed.
func (c *conn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		close(c.closed)
		err = closeSocket(c.id)
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
	if r := hostSockCloseWrite(c.id); r != 0 {
		return c.opErr("close", socketError(r))
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
