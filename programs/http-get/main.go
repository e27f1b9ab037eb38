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
	"runtime"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 3 || len(os.Args) > 4 {
		fmt.Fprintln(os.Stderr, "usage: http-get get|post|status|stream|cancel|redirect URL\n       http-get loop|loop-close URL N")
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
			req, err := http.NewRequest("GET", url+"/"+code, nil)
			must(err)
			if runtime.GOOS == "js" {
				// fetch follows redirects itself unless told not to; Go's
				// client then sees the 3xx and asks CheckRedirect, as natively.
				req.Header.Set("js.fetch:redirect", "manual")
			}
			resp, err := client.Do(req)
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
	case "redirect":
		resp, err := http.Get(url)
		must(err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		must(err)
		fmt.Println("status:", resp.StatusCode)
		fmt.Println("final url:", resp.Request.URL)
		fmt.Printf("body: %q\n", body)
	case "loop", "loop-close":
		// N sequential requests, each body read to the end; with
		// loop-close, each on a new connection.
		n := 100
		if len(os.Args) == 4 {
			var err error
			n, err = strconv.Atoi(os.Args[3])
			must(err)
		}
		start := time.Now()
		bytes := 0
		for i := 0; i < n; i++ {
			req, err := http.NewRequest("GET", url, nil)
			must(err)
			if mode == "loop-close" {
				req.Close = true
				req.Header.Set("Connection", "close")
			}
			resp, err := http.DefaultClient.Do(req)
			must(err)
			b, err := io.ReadAll(resp.Body)
			must(err)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				must(fmt.Errorf("request %d: status %d", i, resp.StatusCode))
			}
			bytes += len(b)
		}
		elapsed := time.Since(start)
		fmt.Printf("requests: %d, bytes: %d, seconds: %.3f, per second: %.0f\n",
			n, bytes, elapsed.Seconds(), float64(n)/elapsed.Seconds())
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
