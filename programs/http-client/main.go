// Command http-client fetches a URL through wasabi.RoundTripper and prints
// the status line, then the body. It exits 1 when the request fails.
//
//	wasabi run --allow-connect=127.0.0.1:8080 http-client.wasm -- http://127.0.0.1:8080/
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"

	"wasabi.dev/go"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: http-client URL")
		os.Exit(2)
	}
	client := &http.Client{Transport: &wasabi.RoundTripper{}}
	resp, err := client.Get(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "http-client:", err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Proto, resp.Status)
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		fmt.Fprintln(os.Stderr, "http-client: reading the body:", err)
		os.Exit(1)
	}
}
