// Command hello prints a greeting: the smallest program Wasabi runs.
package main

import "fmt"

func main() {
	fmt.Println("Hello from Go, running inside Wasabi!")
}
