// Command idle prints one line and then waits, doing nothing: what a
// runtime costs per program at rest.
package main

import (
	"fmt"
	"time"
)

func main() {
	fmt.Println("idle")
	time.Sleep(24 * time.Hour)
}
