// Command crash-loop starts, runs for a second, and panics: a tenant a
// restart policy brings back, with backoff.
package main

import (
	"fmt"
	"time"
)

func main() {
	fmt.Println("starting")
	time.Sleep(time.Second)
	panic("crash-loop crashes, as it always does")
}
