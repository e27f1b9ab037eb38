//go:build go1.24 && !(js && wasm)

package wasabi

import "net/http"

// enableUnencryptedHTTP2 lets srv speak HTTP/2 without TLS (prior
// knowledge) beside HTTP/1, as the host's server does under Wasabi.
func enableUnencryptedHTTP2(srv *http.Server) {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Protocols = &p
}
