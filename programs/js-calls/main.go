//go:build js && wasm

// Command js-calls measures the cost of a syscall/js call: it reads a
// property of a JS object N times (default 1,000,000) and prints how long
// the calls took, so runtimes compare the calls without their startup.
package main

import (
	"flag"
	"fmt"
	"syscall/js"
	"time"
)

func main() {
	n := flag.Int("n", 1000000, "number of calls")
	flag.Parse()
	global := js.Global()
	started := time.Now()
	objects := 0
	for i := 0; i < *n; i++ {
		if global.Get("Object").Type() == js.TypeFunction {
			objects++
		}
	}
	elapsed := time.Since(started)
	fmt.Printf("%d calls in %.6f s (%d ok)\n", *n, elapsed.Seconds(), objects)
}
