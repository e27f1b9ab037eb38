// Command http-handlers serves a set of handlers that exercise what a Go
// handler can see and do, so tests can compare the same program natively
// and under Wasabi with real clients. It prints "listening on ADDR", then
// one line per event a test waits for ("cancelled /slow").
//
//	wasabi run --allow-listen=127.0.0.1:8080 http-handlers.wasm -- -addr 127.0.0.1:8080
//
// -socket serves with http.Serve (Go's own server in the guest) instead of
// wasabi.Serve.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"wasabi.dev/go"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	socket := flag.Bool("socket", false, "serve with http.Serve (Go's server in the guest)")
	flag.Parse()
	l, err := wasabi.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", l.Addr())
	mux := http.NewServeMux()
	mux.HandleFunc("/dump", dump)
	mux.HandleFunc("/stream", stream)
	mux.HandleFunc("/big", big)
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/status", status)
	mux.HandleFunc("/slow", slow)
	mux.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("on purpose") })
	mux.HandleFunc("/hijack", hijack)
	mux.HandleFunc("/json", jsonAPI)
	mux.HandleFunc("/headers", headers)
	if *socket {
		log.Fatal(http.Serve(l, mux))
	}
	log.Fatal(wasabi.Serve(l, mux))
}

// dump answers with what the handler saw of the request, as JSON.
func dump(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	sum := sha256.Sum256(body)
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	hdr := map[string][]string{}
	for k, v := range r.Header {
		hdr[k] = v
	}
	out := map[string]any{
		"method":            r.Method,
		"request_uri":       r.RequestURI,
		"path":              r.URL.Path,
		"raw_query":         r.URL.RawQuery,
		"proto":             r.Proto,
		"proto_major":       r.ProtoMajor,
		"host":              r.Host,
		"header":            hdr,
		"content_length":    r.ContentLength,
		"transfer_encoding": r.TransferEncoding,
		"body_len":          len(body),
		"body_sha256":       hex.EncodeToString(sum[:]),
		"body_error":        fmt.Sprint(err),
		"remote_host":       host,
		"local_addr_known":  r.Context().Value(http.LocalAddrContextKey) != nil,
		"tls":               r.TLS != nil,
	}
	if r.TLS != nil {
		out["tls_alpn"] = r.TLS.NegotiatedProtocol
		out["tls_server_name"] = r.TLS.ServerName
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// stream writes n chunks of size bytes, flushing each, and a trailer with
// the SHA-256 of everything sent.
func stream(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	size, _ := strconv.Atoi(r.URL.Query().Get("size"))
	w.Header().Set("Trailer", "X-Checksum")
	w.Header().Set("Content-Type", "application/octet-stream")
	h := sha256.New()
	f := w.(http.Flusher)
	for i := 0; i < n; i++ {
		chunk := []byte(strings.Repeat(string(rune('a'+i%26)), size))
		w.Write(chunk)
		h.Write(chunk)
		f.Flush()
	}
	w.Header().Set("X-Checksum", hex.EncodeToString(h.Sum(nil)))
}

// big writes mb MiB in 32 KiB writes.
func big(w http.ResponseWriter, r *http.Request) {
	mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
	chunk := make([]byte, 32<<10)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	for i := 0; i < mb*32; i++ {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// echo streams the request body back as it arrives.
func echo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	n, err := io.Copy(w, r.Body)
	if err != nil {
		fmt.Printf("echo failed after %d bytes: %v\n", n, err)
	}
}

func status(w http.ResponseWriter, r *http.Request) {
	code, _ := strconv.Atoi(r.URL.Query().Get("code"))
	w.Header().Set("X-Status", strconv.Itoa(code))
	w.WriteHeader(code)
	fmt.Fprintf(w, "status %d\n", code)
}

// slow waits for the client to go away (or 10 s) and says which.
func slow(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
		fmt.Println("cancelled /slow")
	case <-time.After(10 * time.Second):
		fmt.Fprintln(w, "slow done")
	}
}

func hijack(w http.ResponseWriter, r *http.Request) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "not a Hijacker", http.StatusInternalServerError)
		return
	}
	c, _, err := hj.Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotImplemented)
		return
	}
	c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked"))
	c.Close()
}

// jsonAPI decodes a JSON object and answers with a summary of it.
func jsonAPI(w http.ResponseWriter, r *http.Request) {
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"keys": len(keys), "name": in["name"], "ok": true})
}

func headers(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Set-Cookie", "a=1")
	h.Add("Set-Cookie", "b=2")
	h.Set("X-Multi", "one")
	h.Add("X-Multi", "two")
	h.Set("Content-Type", "text/x-custom")
	h.Set("Cache-Control", "no-store")
	io.WriteString(w, "headers\n")
}
