// Command hello-server answers every HTTP request with its GREETING
// environment variable ("hello" when unset). `?delay=500ms` makes it wait
// before answering, to keep a request in flight. It prints
// "listening on ADDR" once it listens.
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
	log.Fatal(http.Serve(l, handler))
}
