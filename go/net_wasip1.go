//go:build wasip1

package wasabi

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Under GOOS=wasip1 a socket is a WASI descriptor. The runtime opens,
// binds, listens and connects it through the socket extension WasmEdge
// defined (module wasi_snapshot_preview1), which Wasabi implements; once
// made, it is handed to the standard library (net.FileListener,
// net.FileConn), so reads, writes, deadlines and Close are Go's own,
// waiting in Go's network poller (poll_oneoff) rather than in the host.

//go:wasmimport wasi_snapshot_preview1 sock_open
func sockOpen(family, socktype int32, fd unsafe.Pointer) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_bind
func sockBind(fd int32, addr unsafe.Pointer, port uint32) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_listen
func sockListen(fd, backlog int32) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_connect
func sockConnect(fd int32, addr unsafe.Pointer, port uint32) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_getsockopt
func sockGetsockopt(fd int32, level, name uint32, value unsafe.Pointer, size uint32) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_getlocaladdr
func sockGetlocaladdr(fd int32, addr unsafe.Pointer, port unsafe.Pointer) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_getpeeraddr
func sockGetpeeraddr(fd int32, addr unsafe.Pointer, port unsafe.Pointer) syscall.Errno

//go:wasmimport wasi_snapshot_preview1 sock_getaddrinfo
func sockGetaddrinfo(node unsafe.Pointer, nodeLen uint32, service unsafe.Pointer, serviceLen uint32, hints unsafe.Pointer, res unsafe.Pointer, maxResults uint32, resLen unsafe.Pointer) syscall.Errno

// The extension's constants.
const (
	afInet     = 1
	afInet6    = 2
	sockStream = 2
	solSocket  = 0
	soError    = 2
)

// addrBuf is the extension's address argument: a buffer and its length.
type addrBuf struct {
	buf uint32
	len uint32
}

// rawAddr is the buffer the runtime fills with an address: a family, then
// 4 or 16 address bytes.
type rawAddr struct {
	family uint16
	addr   [126]byte
}

// Listen announces on the local network address ("tcp", "tcp4" or "tcp6";
// "127.0.0.1:8080", ":0" for any free port) and returns a listener.
//
// Under Wasabi the listener is a host socket, granted by --allow-listen;
// elsewhere Listen is net.Listen.
func Listen(network, address string) (net.Listener, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "listen", Net: network, Addr: stringAddr{network, address}, Err: err}
	}
	ap, err := resolve(network, address, true)
	if err != nil {
		return nil, opErr(err)
	}
	fd, err := socket(ap)
	if err != nil {
		return nil, opErr(err)
	}
	ip := ap.Addr().AsSlice()
	buf := addrBuf{buf: uint32(uintptr(unsafe.Pointer(&ip[0]))), len: uint32(len(ip))}
	if errno := sockBind(fd, unsafe.Pointer(&buf), uint32(ap.Port())); errno != 0 {
		syscall.Close(int(fd))
		return nil, opErr(os.NewSyscallError("bind", errno))
	}
	if errno := sockListen(fd, 128); errno != 0 {
		syscall.Close(int(fd))
		return nil, opErr(os.NewSyscallError("listen", errno))
	}
	f := os.NewFile(uintptr(fd), "")
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, opErr(err)
	}
	return &listener{Listener: l, addr: sockAddr(fd, false)}, nil
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
	addrs, err := resolveDial(network, address)
	if err != nil {
		return nil, opErr(err)
	}
	var c net.Conn
	for _, ap := range addrs {
		if c, err = dialOne(ctx, ap); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, opErr(err)
	}
	return c, nil
}

// dialOne connects to ap.
func dialOne(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
	fd, err := socket(ap)
	if err != nil {
		return nil, err
	}
	ip := ap.Addr().AsSlice()
	buf := addrBuf{buf: uint32(uintptr(unsafe.Pointer(&ip[0]))), len: uint32(len(ip))}
	errno := sockConnect(fd, unsafe.Pointer(&buf), uint32(ap.Port()))
	if errno != 0 && errno != syscall.EINPROGRESS {
		syscall.Close(int(fd))
		return nil, os.NewSyscallError("connect", errno)
	}
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	if errno == syscall.EINPROGRESS {
		if err := awaitConnect(ctx, f); err != nil {
			return nil, err
		}
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	return &conn{TCPConn: c.(*net.TCPConn), local: sockAddr(fd, false), remote: sockAddr(fd, true)}, nil
}

// awaitConnect waits in Go's poller until the connect under way on f ends,
// or ctx is done, and returns how it ended.
func awaitConnect(ctx context.Context, f *os.File) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	var result error
	werr := raw.Write(func(fd uintptr) bool {
		var value int32
		if errno := sockGetsockopt(int32(fd), solSocket, soError, unsafe.Pointer(&value), 4); errno != 0 {
			result = os.NewSyscallError("getsockopt", errno)
			return true
		}
		switch syscall.Errno(value) {
		case syscall.EINPROGRESS:
			return false
		case 0:
			return true
		default:
			result = os.NewSyscallError("connect", syscall.Errno(value))
			return true
		}
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if werr != nil {
		return werr
	}
	return result
}

// socket opens a non-blocking stream socket of ap's family.
func socket(ap netip.AddrPort) (int32, error) {
	family := int32(afInet)
	if ap.Addr().Is6() {
		family = afInet6
	}
	var fd int32
	if errno := sockOpen(family, sockStream, unsafe.Pointer(&fd)); errno != 0 {
		return -1, os.NewSyscallError("socket", errno)
	}
	if err := syscall.SetNonblock(int(fd), true); err != nil {
		syscall.Close(int(fd))
		return -1, os.NewSyscallError("setnonblock", err)
	}
	return fd, nil
}

// resolveDial turns "host:port" into the addresses to try, in order: an IP
// address or "localhost" as resolve does; any other host name through the
// runtime (sock_getaddrinfo), which looks it up only when a connect grant
// names it.
func resolveDial(network, address string) ([]netip.AddrPort, error) {
	ap, err := resolve(network, address, false)
	var dnsErr *net.DNSError
	if err == nil || !errors.As(err, &dnsErr) {
		return []netip.AddrPort{ap}, err
	}
	host, port, _ := net.SplitHostPort(address)
	return lookup(network, host, port)
}

// The extension's addrinfo and sockaddr records, as the runtime reads and
// fills them (WasmEdge's layouts).
type addrinfo struct {
	flags     uint16
	family    uint8
	socktype  uint8
	protocol  uint32
	addrlen   uint32
	addr      uint32
	canonname uint32
	canonlen  uint32
	next      uint32
}

type sockaddr struct {
	family  uint32
	dataLen uint32
	data    uint32
	_       uint32
}

type lookupResult struct {
	info addrinfo
	sa   sockaddr
	data [26]byte
}

// lookup asks the runtime for host's addresses of network's family.
func lookup(network, host, port string) ([]netip.AddrPort, error) {
	hints := addrinfo{socktype: sockStream}
	switch network {
	case "tcp4":
		hints.family = afInet
	case "tcp6":
		hints.family = afInet6
	}
	var results [8]lookupResult
	for i := range results {
		r := &results[i]
		r.sa.dataLen = uint32(len(r.data))
		r.sa.data = uint32(uintptr(unsafe.Pointer(&r.data)))
		r.info.addrlen = uint32(unsafe.Sizeof(r.sa))
		r.info.addr = uint32(uintptr(unsafe.Pointer(&r.sa)))
		if i+1 < len(results) {
			r.info.next = uint32(uintptr(unsafe.Pointer(&results[i+1].info)))
		}
	}
	first := uint32(uintptr(unsafe.Pointer(&results[0].info)))
	node, service := []byte(host+"\x00"), []byte(port+"\x00")
	var n uint32
	errno := sockGetaddrinfo(unsafe.Pointer(&node[0]), uint32(len(node)), unsafe.Pointer(&service[0]), uint32(len(service)),
		unsafe.Pointer(&hints), unsafe.Pointer(&first), uint32(len(results)), unsafe.Pointer(&n))
	runtime.KeepAlive(results)
	if errno == syscall.EACCES {
		// Denied: no connect grant names the host (the runtime says which
		// to add).
		return nil, os.NewSyscallError("getaddrinfo", errno)
	}
	if errno != 0 {
		return nil, &net.DNSError{Err: errno.Error(), Name: host, IsNotFound: errno == syscall.ENOENT}
	}
	var addrs []netip.AddrPort
	for _, r := range results[:min(int(n), len(results))] {
		p := uint16(r.data[0])<<8 | uint16(r.data[1])
		switch r.sa.family {
		case afInet:
			addrs = append(addrs, netip.AddrPortFrom(netip.AddrFrom4([4]byte(r.data[2:6])), p))
		case afInet6:
			addrs = append(addrs, netip.AddrPortFrom(netip.AddrFrom16([16]byte(r.data[2:18])), p))
		}
	}
	if len(addrs) == 0 {
		return nil, &net.DNSError{Err: "no address found", Name: host, IsNotFound: true}
	}
	return addrs, nil
}

// resolve turns "host:port" into an address of network's family without a
// resolver: the host is an IP address, "localhost", or (to listen) empty.
func resolve(network, address string, listen bool) (netip.AddrPort, error) {
	if err := checkNetwork(network); err != nil {
		return netip.AddrPort{}, err
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, &net.AddrError{Err: "invalid port", Addr: address}
	}
	var ip netip.Addr
	switch {
	case host == "" && listen && network == "tcp6":
		ip = netip.IPv6Unspecified()
	case host == "" && listen:
		ip = netip.IPv4Unspecified()
	case host == "localhost" && network == "tcp6":
		ip = netip.IPv6Loopback()
	case host == "localhost":
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	default:
		ip, err = netip.ParseAddr(host)
		if err != nil {
			return netip.AddrPort{}, &net.DNSError{Err: "a listen address must be an IP address or localhost", Name: host, IsNotFound: true}
		}
	}
	ip = ip.Unmap()
	if (network == "tcp4" && !ip.Is4()) || (network == "tcp6" && !ip.Is6()) {
		return netip.AddrPort{}, &net.AddrError{Err: "address of the wrong family", Addr: address}
	}
	return netip.AddrPortFrom(ip, uint16(p)), nil
}

func checkNetwork(network string) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return nil
	}
	return net.UnknownNetworkError(network)
}

// sockAddr is the local (or peer) address of socket fd.
func sockAddr(fd int32, peer bool) net.Addr {
	var raw rawAddr
	buf := addrBuf{buf: uint32(uintptr(unsafe.Pointer(&raw))), len: uint32(unsafe.Sizeof(raw))}
	var port uint32
	get := sockGetlocaladdr
	if peer {
		get = sockGetpeeraddr
	}
	if get(fd, unsafe.Pointer(&buf), unsafe.Pointer(&port)) != 0 {
		return &net.TCPAddr{}
	}
	switch raw.family {
	case afInet:
		return &net.TCPAddr{IP: net.IP(raw.addr[:4]), Port: int(port)}
	case afInet6:
		return &net.TCPAddr{IP: net.IP(raw.addr[:16]), Port: int(port)}
	}
	return &net.TCPAddr{}
}

type stringAddr struct{ network, address string }

func (a stringAddr) Network() string { return a.network }
func (a stringAddr) String() string  { return a.address }

// listener is the standard library's listener over a socket descriptor,
// with the addresses GOOS=wasip1 cannot find out itself.
type listener struct {
	net.Listener
	addr   net.Addr
	closed atomic.Bool
}

func (l *listener) Addr() net.Addr { return l.addr }

func (l *listener) Close() error {
	l.closed.Store(true)
	return l.Listener.Close()
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, fixError(err, l.closed.Load(), l.addr, nil)
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	local, remote := l.addr, net.Addr(&net.TCPAddr{})
	if raw, err := tc.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) {
			local, remote = sockAddr(int32(fd), false), sockAddr(int32(fd), true)
		})
	}
	return &conn{TCPConn: tc, local: local, remote: remote}, nil
}

// conn is the standard library's connection, with its addresses.
type conn struct {
	*net.TCPConn
	local, remote net.Addr
	closed        atomic.Bool
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

func (c *conn) Read(b []byte) (int, error) {
	n, err := c.TCPConn.Read(b)
	return n, fixError(err, c.closed.Load(), c.local, c.remote)
}

func (c *conn) Write(b []byte) (int, error) {
	n, err := c.TCPConn.Write(b)
	return n, fixError(err, c.closed.Load(), c.local, c.remote)
}

func (c *conn) Close() error {
	c.closed.Store(true)
	return c.TCPConn.Close()
}

// fixError gives an error of the standard library's connection what it
// cannot give under wasip1: the addresses, and net.ErrClosed (rather than
// the error of a closed file, since the socket came from os.NewFile) once
// the connection or listener has been closed.
func fixError(err error, closed bool, local, remote net.Addr) error {
	var op *net.OpError
	if err == nil || !errors.As(err, &op) {
		return err
	}
	fixed := *op
	fixed.Source, fixed.Addr = local, remote
	if remote == nil {
		fixed.Source, fixed.Addr = nil, local
	}
	if closed {
		fixed.Err = net.ErrClosed
	}
	return &fixed
}
