//go:build !(js && wasm) && !wasip1

package wasabi

import (
	"context"
	"net"
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
