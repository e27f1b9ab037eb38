// Command panic-exit ends in the way its first argument names, to check that
// exit codes and Go's own failure reports come through unchanged:
//
//	panic-exit exit N     os.Exit(N)
//	panic-exit panic      a Go panic (exit 2)
//	panic-exit deadlock   every goroutine blocked forever (exit 2)
//	panic-exit nil        a nil pointer dereference (exit 2)
package main

import (
	"fmt"
	"os"
	"strconv"
)

type node struct{ next *node }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: panic-exit exit N | panic | deadlock | nil")
		os.Exit(64)
	}
	fmt.Println("about to", os.Args[1])
	switch os.Args[1] {
	case "exit":
		code, err := strconv.Atoi(os.Args[2])
		if err != nil {
			panic(err)
		}
		os.Exit(code)
	case "panic":
		panic("something went badly wrong")
	case "deadlock":
		ch := make(chan int)
		go func() { ch <- 1 }()
		<-ch
		<-ch
	case "nil":
		var n *node
		fmt.Println(n.next)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(64)
	}
}
