// Package wasabi is the Go companion module of the Wasabi runtime: real TCP
// networking for Go programs built with GOOS=js GOARCH=wasm or
// GOOS=wasip1 GOARCH=wasm.
//
// Go's standard net package has no sockets under js/wasm (only an in-process
// fake), and Node.js gives such programs none either. Under Wasabi, this
// package's Listen, Dial and DialContext return a real net.Listener and
// net.Conn backed by the host's sockets; Serve and ListenAndServe serve HTTP
// (the host speaks HTTP in native code and runs only the handler in the
// program) and RoundTripper makes HTTP requests through them. A goroutine
// blocked on a socket parks only itself: the rest of the program keeps
// running.
//
// Built for GOOS=wasip1, Listen, Dial and DialContext open sockets through
// the WasmEdge socket extension, which Wasabi implements, and hand them to
// the standard library (net.FileListener, net.FileConn): reads, writes and
// deadlines are then Go's own, waiting in Go's network poller, and Serve is
// the standard library's server in the program. A host name to dial is
// resolved by the runtime (sock_getaddrinfo), which looks it up only when a
// connect grant names it; Listen takes an IP address or "localhost".
//
// Built for any other GOOS/GOARCH, the same functions use the standard
// library, so one program runs natively (to develop and test it) and under
// Wasabi (to host it) without changes.
//
// Under Wasabi the package talks to the runtime through its own
// //go:wasmimport functions (module "wasabi") with integer arguments, not
// through syscall/js. A js/wasm program that uses its networking therefore
// runs only under Wasabi: Node.js refuses to start it, naming the missing
// "wasabi" import.
//
// # Permissions
//
// Under Wasabi nothing is reachable unless the runtime grants it:
//
//	wasabi run --allow-listen=127.0.0.1:8080 server.wasm
//	wasabi run --allow-connect=10.0.0.5:5432 client.wasm
//	wasabi run --allow-net app.wasm   # everything, for a program you trust
//
// A denied operation returns an error that names the address and the flag
// that grants it; errors.Is(err, os.ErrPermission) reports true for it.
//
// # Connections
//
// Connections implement the whole net.Conn contract: concurrent Read and
// Write, Close that unblocks pending calls with net.ErrClosed, and
// deadlines (a blocked Read ends with an error for which
// errors.Is(err, os.ErrDeadlineExceeded) and net.Error.Timeout report true).
// They also have CloseWrite, for half-closing a connection.
//
// Only TCP ("tcp", "tcp4", "tcp6") is supported.
package wasabi

// Version is the version of the companion module.
const Version = "0.1.0"
