//go:build !go1.24

package main

import (
	"errors"
	"net/http"
)

// unencryptedHTTP2 needs Go 1.24's http.Protocols.
func unencryptedHTTP2(*http.Transport) error {
	return errors.New("-h2 needs Go 1.24 or later")
}
