//go:build go1.24

package main

import "net/http"

// unencryptedHTTP2 makes t speak HTTP/2 without TLS (prior knowledge).
func unencryptedHTTP2(t *http.Transport) error {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	t.Protocols = &p
	return nil
}
