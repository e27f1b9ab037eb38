// Command args-env prints its arguments and environment, to show that a
// guest sees exactly what it was given and nothing of the host.
package main

import (
	"fmt"
	"os"
	"sort"
)

func main() {
	fmt.Printf("args: %d\n", len(os.Args)-1)
	for i, a := range os.Args[1:] {
		fmt.Printf("  arg[%d] = %q\n", i+1, a)
	}
	env := os.Environ()
	sort.Strings(env)
	fmt.Printf("env: %d\n", len(env))
	for _, kv := range env {
		fmt.Printf("  %s\n", kv)
	}
	greeting, ok := os.LookupEnv("GREETING")
	fmt.Printf("GREETING set=%v value=%q\n", ok, greeting)
	_, home := os.LookupEnv("HOME")
	fmt.Printf("HOME set=%v\n", home)
	fmt.Fprintln(os.Stderr, "this line goes to stderr")
	if len(os.Args) > 1 && os.Args[1] == "fail" {
		os.Exit(3)
	}
}
