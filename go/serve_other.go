//go:build !(js && wasm)

package wasabi

import (
	"net"
	"net/http"
)

// Serve serves HTTP requests on l with handler (http.DefaultServeMux when
// nil) until l is closed.
//
// Under Wasabi, for a js/wasm program whose l comes from Listen, the host
// serves: it accepts, speaks HTTP/1.1 and HTTP/2 and enforces the server's
// limits in native code, and runs only handler in the program. Elsewhere
// (natively, under wasip1, and for any other listener) Serve is the
// standard library's http.Server; built with Go 1.24 or later it also
// speaks HTTP/2 without TLS (prior knowledge), as the host does.
func Serve(l net.Listener, handler http.Handler) error {
	srv := &http.Server{Handler: handler}
	enableUnencryptedHTTP2(srv)
	return srv.Serve(l)
}
