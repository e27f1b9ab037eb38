// Command preopened-server is an HTTP server written with the standard
// library alone, the way a GOOS=wasip1 program serves under a runtime that
// opens its listener for it (Wasabi, wazero, wasmtime's old --tcplisten):
// the listener is descriptor 3, handed to net.FileListener. Natively (or
// with -addr) it listens on an address itself, to compare.
//
//	wasabi run --allow-listen=127.0.0.1:8080 wasip1/preopened-server.wasm
//	preopened-server -addr 127.0.0.1:8080
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
)

func main() {
	addr := flag.String("addr", "", "listen on this address rather than on descriptor 3")
	flag.Parse()
	log.SetFlags(0)

	var l net.Listener
	var err error
	if *addr != "" || runtime.GOOS != "wasip1" {
		l, err = net.Listen("tcp", *addr)
	} else {
		// Non-blocking, so that Go's poller waits for connections rather
		// than the whole program blocking in accept.
		if err := syscall.SetNonblock(3, true); err != nil {
			log.Fatalf("descriptor 3: %v", err)
		}
		l, err = net.FileListener(os.NewFile(3, "listener"))
	}
	if err != nil {
		log.Fatal(err)
	}
	var served atomic.Int64
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		w.Header().Set("X-Served", fmt.Sprint(n))
		fmt.Fprintf(w, "hello from the standard library, %s %s\n", r.Method, r.URL.Path)
	})
	fmt.Println("serving")
	log.Fatal(http.Serve(l, nil))
}
