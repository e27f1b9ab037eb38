// Command go-net-example is Wasabi's networking demo: an HTTP server on
// 127.0.0.1:8080, served through wasabi.ListenAndServe, that makes 1000
// requests to itself through wasabi.RoundTripper, logs each one, and exits 0.
//
//	wasabi run --allow-listen=127.0.0.1:8080 --allow-connect=127.0.0.1:8080 go-net-example.wasm
//
// With -serve it goes on serving until stopped, as in a container
// (docs/kubernetes.md): -addr 0.0.0.0:8080 -n 0 -serve.
//
// The same program runs natively (go run .), where the wasabi package falls
// back to the standard library.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"wasabi.dev/go"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to serve on and request")
	n := flag.Int("n", 1000, "number of requests to make")
	serve := flag.Bool("serve", false, "keep serving after the requests, until stopped (as in a container)")
	flag.Parse()
	log.SetFlags(0)

	mux := http.NewServeMux()
	mux.HandleFunc("/hello/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello #%s from %s\n", strings.TrimPrefix(r.URL.Path, "/hello/"), r.Host)
	})
	serveErr := make(chan error, 1)
	go func() { serveErr <- wasabi.ListenAndServe(*addr, mux) }()

	client := &http.Client{Transport: &wasabi.RoundTripper{}, Timeout: 10 * time.Second}
	started := time.Now()
	for i := 1; i <= *n; i++ {
		body, err := get(client, "http://"+*addr+"/hello/"+strconv.Itoa(i), serveErr)
		if err != nil {
			log.Printf("request %d: %v", i, err)
			os.Exit(1)
		}
		log.Printf("GET /hello/%d -> %s", i, body)
	}
	log.Printf("%d requests served and answered in %v", *n, time.Since(started).Round(time.Millisecond))
	if *serve {
		log.Printf("serving on %s", *addr)
		if err := <-serveErr; err != nil {
			log.Printf("server: %v", err)
			os.Exit(1)
		}
	}
}

// get fetches url; while the server is not yet listening, it retries.
func get(client *http.Client, url string, serveErr <-chan error) (string, error) {
	for attempt := 0; ; attempt++ {
		select {
		case err := <-serveErr:
			return "", fmt.Errorf("server stopped: %w", err)
		default:
		}
		resp, err := client.Get(url)
		if err != nil {
			if attempt < 50 {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("status %s", resp.Status)
		}
		return string(b[:len(b)-1]), nil
	}
}
