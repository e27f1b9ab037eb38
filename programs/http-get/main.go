// http-get uses net/http exactly as a program written for any platform
// would: it never imports Wasabi's module. Under js/wasm, net/http's
// transport sends its requests through the host's fetch.
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: http-get get|post|status|stream|cancel URL")
		os.Exit(2)
	}
	mode, url := os.Args[1], os.Args[2]
	switch mode {
	case "get":
		resp, err := http.Get(url)
		must(err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		must(err)
		fmt.Println("status:", resp.Status)
		fmt.Println("x-test:", strings.Join(resp.Header.Values("X-Test"), "|"))
		fmt.Println("content-type:", resp.Header.Get("Content-Type"))
		fmt.Printf("body: %q\n", body)
	case "post":
		req, err := http.NewRequest("POST", url, strings.NewReader("ping from the guest"))
		must(err)
		req.Header.Set("X-Request", "yes")
		req.Header.Set("Content-Type", "text/plain")
		resp, err := http.DefaultClient.Do(req)
		must(err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		must(err)
		fmt.Println("status:", resp.StatusCode)
		fmt.Printf("echo: %s\n", body)
	case "status":
		for _, code := range []string{"204", "301", "404", "500"} {
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			}}
			resp, err := client.Get(url + "/" + code)
			must(err)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			fmt.Println(code, "->", resp.StatusCode, resp.Header.Get("Location"))
		}
	case "stream":
		resp, err := http.Get(url)
		must(err)
		defer resp.Body.Close()
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		must(err)
		fmt.Printf("streamed %d bytes, sha256 %x\n", n, h.Sum(nil))
	case "cancel":
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		must(err)
		start := time.Now()
		_, err = http.DefaultClient.Do(req)
		fmt.Println("cancelled:", errors.Is(err, context.DeadlineExceeded), time.Since(start) < 5*time.Second)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		os.Exit(2)
	}
}

func must(err error) {
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
}
