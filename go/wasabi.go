package wasabi

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// Dial connects to address on the named network ("tcp", "tcp4" or "tcp6").
// It is DialContext with context.Background().
func Dial(network, address string) (net.Conn, error) {
	return DialContext(context.Background(), network, address)
}

// ListenAndServe listens on the TCP address addr and serves HTTP requests
// with handler (http.DefaultServeMux when nil), like http.ListenAndServe: it
// is Listen, then Serve. It returns only with an error: the listen failed,
// or serving stopped.
func ListenAndServe(addr string, handler http.Handler) error {
	if addr == "" {
		addr = ":80"
	}
	l, err := Listen("tcp", addr)
	if err != nil {
		return err
	}
	return Serve(l, handler)
}

// RoundTripper is an http.RoundTripper whose connections are made with
// DialContext, so an http.Client reaches real servers from a Go js/wasm
// program under Wasabi. Its zero value is ready to use:
//
//	client := &http.Client{Transport: &wasabi.RoundTripper{}}
//
// It is an http.Transport underneath (HTTP/1.1, keep-alive connection
// reuse, chunked bodies), created on first use; a RoundTripper must not be
// copied after that. Use one per program, as with http.Transport.
type RoundTripper struct {
	once      sync.Once
	transport *http.Transport
}

func (rt *RoundTripper) get() *http.Transport {
	rt.once.Do(func() {
		rt.transport = &http.Transport{
			DialContext:           DialContext,
			MaxIdleConns:          100,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	})
	return rt.transport
}

// RoundTrip makes one HTTP request; see http.RoundTripper.
func (rt *RoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	return rt.get().RoundTrip(req)
}

// CloseIdleConnections closes the keep-alive connections that are not in
// use; see http.Transport.CloseIdleConnections.
func (rt *RoundTripper) CloseIdleConnections() {
	rt.get().CloseIdleConnections()
}
