//go:build js && wasm

// Command host-hog makes the host allocate for it, one way per subcommand:
// memory outside linear memory that the tenant's limit must still count.
//
//	host-hog strings   keeps 64 MiB strings alive through js.ValueOf
//	host-hog arrays    keeps 16 MiB Uint8Arrays alive
//	host-hog cycle     joins an array that contains itself
//	host-hog hold      keeps four 16 MiB strings alive and waits
package main

import (
	"fmt"
	"os"
	"strings"
	"syscall/js"
	"time"
)

// held stays reachable while the program waits, so Go's collector never
// finalizes its references.
var held []js.Value

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: host-hog strings|arrays|cycle|hold")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "strings":
		var kept []js.Value
		for i := 1; i <= 64; i++ {
			// Each string exists once in Go (and is dropped) and once in the host.
			kept = append(kept, js.ValueOf(strings.Repeat(string(rune('a'+i%26)), 64<<20)))
			fmt.Printf("holding %d strings of 64 MiB\n", i)
		}
		fmt.Println("kept", len(kept))
	case "arrays":
		var kept []js.Value
		u8 := js.Global().Get("Uint8Array")
		for i := 1; i <= 256; i++ {
			kept = append(kept, u8.New(16<<20))
			fmt.Printf("holding %d arrays of 16 MiB\n", i)
		}
		fmt.Println("kept", len(kept))
	case "hold":
		for i := 0; i < 4; i++ {
			// Distinct texts: the host keeps one copy of equal strings.
			held = append(held, js.ValueOf(strings.Repeat(string(rune('h'+i)), 16<<20)))
		}
		fmt.Println("holding", len(held), "strings of 16 MiB")
		time.Sleep(time.Hour)
	case "cycle":
		a := js.Global().Get("Array").New()
		a.Call("push", a)
		a.Call("push", 7)
		fmt.Printf("join: %q\n", a.Call("join", "-").String())
	default:
		fmt.Fprintln(os.Stderr, "unknown subcommand", os.Args[1])
		os.Exit(2)
	}
}
