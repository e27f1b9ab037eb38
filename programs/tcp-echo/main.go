// Command tcp-echo is a TCP echo server: every connection gets back what it
// sends, and when the client half-closes, the server finishes echoing and
// half-closes too. It prints "listening on ADDR" once it accepts.
//
//	wasabi run --allow-listen=127.0.0.1 tcp-echo.wasm -- -addr 127.0.0.1:7007
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"

	"wasabi.dev/go"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7007", "address to listen on (port 0: any free port)")
	flag.Parse()
	log.SetFlags(0)

	l, err := wasabi.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", l.Addr())
	for {
		c, err := l.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go echo(c)
	}
}

func echo(c net.Conn) {
	defer c.Close()
	if _, err := io.Copy(c, c); err != nil {
		log.Printf("%s: %v", c.RemoteAddr(), err)
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
