// Command http-check makes a fixed set of requests to the http-handlers
// program with Go's own net/http client and prints a transcript that does
// not depend on where the server runs: status, protocol, headers (without
// Date), a digest of each body, trailers. Tests run it natively against the
// native server and against the same server under Wasabi, and compare.
//
//	http-check [-h2] http://127.0.0.1:8080
//
// -h2 speaks HTTP/2 without TLS (prior knowledge).
package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
)

func main() {
	h2 := flag.Bool("h2", false, "speak HTTP/2 without TLS (prior knowledge)")
	flag.Parse()
	base := flag.Arg(0)
	u, err := url.Parse(base)
	if err != nil || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: http-check [-h2] http://HOST:PORT")
		os.Exit(2)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if *h2 {
		if err := unencryptedHTTP2(transport); err != nil {
			log.Fatal(err)
		}
	}
	client := &http.Client{Transport: transport}
	c := checker{client: client, base: base, port: u.Port()}

	c.do("GET", "/dump?x=1&y=%20z", nil, -1, http.Header{"X-A": {"1", "2"}, "Accept-Language": {"fr"}})
	c.do("POST", "/dump", bytes.Repeat([]byte("0123456789"), 10000), 100000, nil)
	c.do("POST", "/dump", bytes.Repeat([]byte("chunked!"), 5000), -1, nil)
	c.do("GET", "/headers", nil, -1, nil)
	c.do("HEAD", "/headers", nil, -1, nil)
	for _, code := range []string{"200", "201", "204", "304", "404", "500"} {
		c.do("GET", "/status?code="+code, nil, -1, nil)
	}
	c.do("GET", "/stream?n=5&size=1000", nil, -1, http.Header{"Te": {"trailers"}})
	c.do("GET", "/big?mb=1", nil, -1, nil)
	c.do("POST", "/echo", bytes.Repeat([]byte("echo"), 1<<18), 1<<20, nil)
	c.do("POST", "/json", []byte(`{"name":"wasabi","size":3,"tags":["a","b"]}`), -1, http.Header{"Content-Type": {"application/json"}})
	c.do("POST", "/json", []byte(`{"name":`), -1, nil)
	c.do("GET", "/missing", nil, -1, nil)
}

type checker struct {
	client *http.Client
	base   string
	port   string
}

// do makes one request (with a body of known length when length >= 0, of
// unknown length otherwise) and prints what came back.
func (c checker) do(method, path string, body []byte, length int64, header http.Header) {
	var r io.Reader
	if body != nil {
		if length >= 0 {
			r = bytes.NewReader(body)
		} else {
			r = io.MultiReader(bytes.NewReader(body)) // hides the length
		}
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		log.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	fmt.Printf("== %s %s\n", method, path)
	resp, err := c.client.Do(req)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("status:", resp.Status, resp.Proto, "length", resp.ContentLength)
	if err != nil {
		fmt.Println("body error:", err)
	}
	printHeader("header", resp.Header)
	printHeader("trailer", resp.Trailer)
	// The server's address is in some bodies; the port differs per run.
	got = bytes.ReplaceAll(got, []byte(":"+c.port), []byte(":PORT"))
	sum := sha256.Sum256(got)
	if len(got) <= 600 && !bytes.ContainsFunc(got, func(r rune) bool { return r == 0 }) {
		fmt.Printf("body: %q\n", got)
	} else {
		fmt.Printf("body: %d bytes, sha256 %x\n", len(got), sum)
	}
}

func printHeader(what string, h http.Header) {
	keys := make([]string, 0, len(h))
	for k := range h {
		if k != "Date" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%s %s: %s\n", what, k, strings.Join(h[k], " | "))
	}
}
