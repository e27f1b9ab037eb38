// Command spin listens (so a supervisor sees it start), then computes
// forever without ever blocking: a tenant that would starve its neighbours
// if the runtime did not preempt it.
package main

import (
	"flag"
	"fmt"
	"log"

	"wasabi.dev/go"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	l, err := wasabi.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", l.Addr(), "and spinning")
	x := uint64(1)
	for {
		x = x*6364136223846793005 + 1442695040888963407
		if x == 0 {
			fmt.Println("unreachable", x)
		}
	}
}
