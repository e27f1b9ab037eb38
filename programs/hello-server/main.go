// Command hello-server answers every HTTP request with its GREETING
// environment variable ("hello" when unset). `?delay=500ms` makes it wait
// before answering, to keep a request in flight. It prints
// "listening on ADDR" once it listens. It serves with wasabi.Serve (under
// Wasabi the host speaks HTTP and runs only the handler in the guest);
// -socket serves with http.Serve on the same listener instead (Go's own
// server in the guest, on the host's sockets).
//
//	wasabi run --env GREETING=hi --allow-listen=127.0.0.1:8080 hello-server.wasm
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"wasabi.dev/go"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	socket := flag.Bool("socket", false, "serve with http.Serve (Go's server in the guest)")
	flag.Parse()
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "hello"
	}
	l, err := wasabi.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", l.Addr())
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.URL.Query().Get("delay")); err == nil {
			time.Sleep(d)
		}
		fmt.Fprintln(w, greeting)
	})
	if *socket {
		log.Fatal(http.Serve(l, handler))
	}
	log.Fatal(wasabi.Serve(l, handler))
}
