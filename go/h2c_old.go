//go:build !go1.24 && !(js && wasm)

package wasabi

import "net/http"

// enableUnencryptedHTTP2 does nothing before Go 1.24, which cannot serve
// HTTP/2 without TLS.
func enableUnencryptedHTTP2(*http.Server) {}
