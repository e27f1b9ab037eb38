//go:build !(js && wasm)

package wasabi

import (
	"context"
	"net"
	"net/http"
)

// Listen announces on the local network address ("tcp", "tcp4" or "tcp6";
// "127.0.0.1:8080", ":0" for any free port) and returns a listener.
//
// Under Wasabi the listener is a host socket, granted by --allow-listen;
// elsewhere Listen is net.Listen.
func Listen(network, address string) (net.Listener, error) {
	return net.Listen(network, address)
}

// DialContext connects to address on the named network ("tcp", "tcp4" or
// "tcp6"), giving up when ctx is done.
//
// Under Wasabi the connection is a host socket, granted by --allow-connect;
// elsewhere DialContext is (&net.Dialer{}).DialContext.
func DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

// Serve serves HTTP requests on l with handler (http.DefaultServeMux when
// nil) until l is closed.
//
// Under Wasabi, when l comes from Listen, the host serves: it accepts, speaks
// HTTP/1.1 and HTTP/2 and enforces the server's limits in native code, and
// runs only handler in the program. Elsewhere (and for any other listener)
// Serve is the standard library's http.Server; built with Go 1.24 or later
// it also speaks HTTP/2 without TLS (prior knowledge), as the host does.
func Serve(l net.Listener, handler http.Handler) error {
	srv := &http.Server{Handler: handler}
	enableUnencryptedHTTP2(srv)
	return srv.Serve(l)
}
