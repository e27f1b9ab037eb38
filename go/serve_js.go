//go:build js && wasm

package wasabi

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// The host's HTTP server, through the runtime's own imports (module
// "wasabi", see host_js.go). The host accepts,
// parses and enforces the server's limits; this file turns its requests into
// *http.Request values for the handler and the handler's ResponseWriter
// calls into response bytes.

//go:wasmimport wasabi http_serve
func hostHTTPServe(listener int32) int32

//go:wasmimport wasabi http_next
func hostHTTPNext(buf unsafe.Pointer, size int32) int64

//go:wasmimport wasabi http_head
func hostHTTPHead(id int32, buf unsafe.Pointer, size int32) int32

//go:wasmimport wasabi http_read
func hostHTTPRead(id int32, buf unsafe.Pointer, size int32) int32

//go:wasmimport wasabi http_respond
func hostHTTPRespond(id, status int32, head unsafe.Pointer, headLen int32, body unsafe.Pointer, bodyLen int32, end int32) int32

//go:wasmimport wasabi http_write
func hostHTTPWrite(id int32, buf unsafe.Pointer, size int32) int32

//go:wasmimport wasabi http_finish
func hostHTTPFinish(id int32, trailers unsafe.Pointer, size int32) int32

//go:wasmimport wasabi http_abort
func hostHTTPAbort(id int32) int32

// bufferBeforeChunking is how much of a response is held before its head
// goes out, as in Go's own server: a handler that writes no more than this
// and returns gets a Content-Length; one that writes more is streamed.
const bufferBeforeChunking = 2048

// flushAt is how much of a streamed response is gathered per call to the
// host.
const flushAt = 4096

// A servedListener is a listener the host serves HTTP on, and its handler.
type servedListener struct {
	handler http.Handler
	baseCtx context.Context
}

// server is the program's side of the host's HTTP server: the handlers of
// the served listeners and the requests in progress.
var server struct {
	mu        sync.Mutex
	started   bool
	listeners map[int32]*servedListener
	requests  map[int32]*serverRequest
	accept    chan struct{}
}

// startServing registers the wake callback (startHost) and starts the
// dispatching goroutine, once.
func startServing() error {
	if err := startHost(); err != nil {
		return err
	}
	server.mu.Lock()
	defer server.mu.Unlock()
	if server.started {
		return nil
	}
	server.started = true
	server.listeners = map[int32]*servedListener{}
	server.requests = map[int32]*serverRequest{}
	server.accept = make(chan struct{}, 1)
	go dispatch()
	return nil
}

// serveHost serves HTTP with handler on l through the host until l is
// closed.
func serveHost(l *listener, handler http.Handler) error {
	if handler == nil {
		handler = http.DefaultServeMux
	}
	if err := startServing(); err != nil {
		return l.opErr(err)
	}
	srv := &http.Server{Addr: l.addr.String(), Handler: handler}
	ctx := context.WithValue(context.Background(), http.ServerContextKey, srv)
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, l.addr)
	server.mu.Lock()
	server.listeners[int32(l.id)] = &servedListener{handler: handler, baseCtx: ctx}
	server.mu.Unlock()
	if hostHTTPServe(int32(l.id)) != 0 {
		return l.opErr(lastError())
	}
	<-l.closed
	server.mu.Lock()
	delete(server.listeners, int32(l.id))
	server.mu.Unlock()
	return l.opErr(net.ErrClosed)
}

// deliverRequest wakes what waits for a token of the host's HTTP server.
func deliverRequest(kind int, id int32) {
	if kind == tokenAccept {
		signal(server.accept)
		return
	}
	server.mu.Lock()
	r := server.requests[id]
	server.mu.Unlock()
	if r == nil {
		return
	}
	switch kind {
	case tokenReadable:
		signal(r.channel(&r.readable))
	case tokenWritable:
		signal(r.channel(&r.writable))
	case tokenGone:
		r.leave()
	}
}

// dispatch takes each request the host queues and starts its handler.
func dispatch() {
	buf := make([]byte, 8192)
	for {
		r := hostHTTPNext(ptr(buf), int32(len(buf)))
		if r == 0 {
			<-server.accept
			continue
		}
		if r < 0 {
			log.Printf("wasabi: taking a request failed: %v", lastError())
			<-server.accept
			continue
		}
		id, n := int32(r>>32), int(uint32(r))
		head := buf[:n]
		if n > len(buf) {
			head = make([]byte, n)
			if int(hostHTTPHead(id, ptr(head), int32(n))) != n {
				hostHTTPAbort(id)
				continue
			}
		}
		startRequest(id, head)
	}
}

// headReader reads the host's request head layout.
type headReader struct {
	b   []byte
	bad bool
}

func (h *headReader) take(n int) []byte {
	if h.bad || n < 0 || n > len(h.b) {
		h.bad = true
		return nil
	}
	v := h.b[:n]
	h.b = h.b[n:]
	return v
}

func (h *headReader) u8() byte {
	if v := h.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (h *headReader) u32() uint32 {
	if v := h.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (h *headReader) str() string { return string(h.take(int(h.u32()))) }

// interned reads a string that is usually one of a few known ones (a
// header name, a method), returning the shared copy without allocating
// when it is, as Go's textproto does for common header names.
func (h *headReader) interned() string {
	b := h.take(int(h.u32()))
	if v, ok := common[string(b)]; ok {
		return v
	}
	return string(b)
}

// common holds the strings interned: methods and common header names.
var common = func() map[string]string {
	m := map[string]string{}
	for _, v := range []string{
		"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Authorization", "Cache-Control", "Cc", "Connection", "Content-Id",
		"Content-Language", "Content-Length", "Content-Transfer-Encoding", "Content-Type",
		"Cookie", "Date", "Dkim-Signature", "Etag", "Expires", "From", "Host",
		"If-Modified-Since", "If-None-Match", "In-Reply-To", "Last-Modified", "Location",
		"Message-Id", "Mime-Version", "Pragma", "Received", "Return-Path", "Server",
		"Set-Cookie", "Subject", "To", "User-Agent", "Via", "X-Forwarded-For", "X-Imforwards",
		"X-Powered-By", "Origin", "Referer", "Upgrade", "Te", "Forwarded", "X-Forwarded-Proto",
		"X-Forwarded-Host", "X-Request-Id", "X-Real-Ip", "Sec-Fetch-Mode", "Sec-Fetch-Site",
		"Sec-Fetch-Dest", "Priority", "Dnt",
	} {
		m[v] = v
	}
	return m
}()

// startRequest builds the handler's *http.Request from a head and runs the
// handler on its own goroutine, as Go's server does.
func startRequest(id int32, head []byte) {
	h := headReader{b: head}
	proto := h.u8()
	flags := h.u8()
	var contentLength int64
	if v := h.take(8); v != nil {
		contentLength = int64(binary.LittleEndian.Uint64(v))
	}
	listenerID := int32(h.u32())
	method, uri, host, remote := h.interned(), h.str(), h.str(), h.str()
	var tlsState *tls.ConnectionState
	if flags&4 != 0 {
		serverName, alpn := h.str(), h.str()
		var version uint16
		if v := h.take(2); v != nil {
			version = binary.LittleEndian.Uint16(v)
		}
		tlsState = &tls.ConnectionState{
			Version:                    version,
			HandshakeComplete:          true,
			ServerName:                 serverName,
			NegotiatedProtocol:         alpn,
			NegotiatedProtocolIsMutual: true,
		}
	}
	count := int(h.u32())
	if count > len(h.b)/8 {
		h.bad = true
	}
	header := make(http.Header, count)
	for i := 0; i < count && !h.bad; i++ {
		k := h.interned()
		header[k] = append(header[k], h.str())
	}
	server.mu.Lock()
	served := server.listeners[listenerID]
	server.mu.Unlock()
	if h.bad || served == nil {
		hostHTTPAbort(id)
		return
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		plainError(id, http.StatusBadRequest, "400 Bad Request")
		return
	}
	req := &http.Request{
		Method:        method,
		URL:           u,
		Header:        header,
		Host:          host,
		RemoteAddr:    remote,
		RequestURI:    uri,
		ContentLength: contentLength,
		Close:         flags&2 != 0,
		TLS:           tlsState,
	}
	switch proto {
	case 10:
		req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.0", 1, 0
	case 20:
		req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/2.0", 2, 0
	default:
		req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	}
	if proto == 11 && host == "" && method != "CONNECT" {
		plainError(id, http.StatusBadRequest, "400 Bad Request: missing required Host header")
		return
	}
	if flags&1 != 0 {
		req.TransferEncoding = []string{"chunked"}
	}
	ctx, cancel := context.WithCancel(served.baseCtx)
	sr := &serverRequest{id: id, cancel: cancel}
	if contentLength == 0 {
		req.Body = http.NoBody
	} else {
		req.Body = &requestBody{r: sr}
	}
	req = req.WithContext(ctx)
	server.mu.Lock()
	server.requests[id] = sr
	server.mu.Unlock()
	w := &responseWriter{r: sr, req: req, header: make(http.Header)}
	j := job{served.handler, w, req}
	// An idle worker takes it; otherwise a new one starts.
	select {
	case jobs <- j:
	default:
		go work(j)
	}
}

// A job is one request for a handler.
type job struct {
	handler http.Handler
	w       *responseWriter
	req     *http.Request
}

// jobs hands requests to idle workers.
var jobs = make(chan job)

// work runs handlers, one request after another, for as long as requests
// keep coming. Reusing goroutines keeps their grown stacks: a goroutine
// per request would copy its stack as it grows, every time, which costs
// more than the handler in a small one.
func work(j job) {
	var body, head []byte
	for {
		// A worker's buffers serve its requests in turn: the host has copied
		// what they held before the next request starts.
		j.w.buf, j.w.head = body[:0], head[:0]
		serveOne(j.handler, j.w, j.req)
		if cap(j.w.buf) <= 64<<10 {
			body = j.w.buf
		}
		if cap(j.w.head) <= 64<<10 {
			head = j.w.head
		}
		j = <-jobs
	}
}

// plainError answers a request the handler never sees.
func plainError(id int32, status int, text string) {
	head := appendFields(nil, http.Header{
		"Content-Type": {"text/plain; charset=utf-8"},
		"Connection":   {"close"},
	}, nil)
	body := []byte(text)
	hostHTTPRespond(id, int32(status), ptr(head), int32(len(head)), ptr(body), int32(len(body)), 1)
}

func serveOne(handler http.Handler, w *responseWriter, req *http.Request) {
	defer func() {
		w.r.finished()
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				const size = 64 << 10
				buf := make([]byte, size)
				buf = buf[:runtime.Stack(buf, false)]
				log.Printf("http: panic serving %v: %v\n%s", req.RemoteAddr, p, buf)
			}
			if !w.done {
				hostHTTPAbort(w.r.id)
			}
		}
	}()
	handler.ServeHTTP(w, req)
	w.finish()
}

// serverRequest is one request in progress: how its goroutines are woken.
// Its channels are made on first use: most requests never wait.
type serverRequest struct {
	id       int32
	cancel   context.CancelFunc
	readable chan struct{} // body bytes arrived
	writable chan struct{} // the response has room
	gone     chan struct{} // closed when the client went away
	left     bool
	ended    bool // the response is over; the host forgot the id
}

// channel returns *ch, made if it is not yet (a wake channel, buffered so
// a wake before the wait is kept).
func (r *serverRequest) channel(ch *chan struct{}) chan struct{} {
	server.mu.Lock()
	defer server.mu.Unlock()
	if *ch == nil {
		*ch = make(chan struct{}, 1)
	}
	return *ch
}

// goneChan is closed once the client has gone away.
func (r *serverRequest) goneChan() chan struct{} {
	server.mu.Lock()
	defer server.mu.Unlock()
	if r.gone == nil {
		r.gone = make(chan struct{})
		if r.left {
			close(r.gone)
		}
	}
	return r.gone
}

// leave: the client went away.
func (r *serverRequest) leave() {
	server.mu.Lock()
	already := r.left
	r.left = true
	if !already && r.gone != nil {
		close(r.gone)
	}
	server.mu.Unlock()
	if !already {
		r.cancel()
	}
}

// finished: the handler returned.
func (r *serverRequest) finished() {
	r.cancel()
	server.mu.Lock()
	delete(server.requests, r.id)
	server.mu.Unlock()
}

var errClientGone = errors.New("wasabi: the client went away")

// requestBody is the request's body, read from the host as the handler
// asks for it.
type requestBody struct {
	r      *serverRequest
	closed bool
	eof    bool
}

func (b *requestBody) Read(p []byte) (int, error) {
	if b.closed || b.r.ended {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.eof {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n := hostHTTPRead(b.r.id, ptr(p), int32(len(p)))
		switch {
		case n > 0:
			return int(n), nil
		case n == 0:
			b.eof = true
			return 0, io.EOF
		case n == resultAgain:
			select {
			case <-b.r.channel(&b.r.readable):
			case <-b.r.goneChan():
				return 0, io.ErrUnexpectedEOF
			}
		case n == resultGone:
			b.r.leave()
			return 0, io.ErrUnexpectedEOF
		case n == resultTooLarge:
			b.r.ended = true
			return 0, &http.MaxBytesError{Limit: limitFrom(lastError())}
		default:
			return 0, lastError()
		}
	}
}

// limitFrom reads the byte count at the end of the host's message.
func limitFrom(err error) int64 {
	msg := err.Error()
	if i := strings.LastIndex(msg, "of "); i >= 0 {
		if n, e := strconv.ParseInt(strings.Fields(msg[i+3:])[0], 10, 64); e == nil {
			return n
		}
	}
	return 0
}

func (b *requestBody) Close() error {
	b.closed = true
	return nil
}

// responseWriter is the handler's http.ResponseWriter.
type responseWriter struct {
	r           *serverRequest
	req         *http.Request
	header      http.Header
	sent        http.Header // the header as of WriteHeader
	status      int
	wroteHeader bool
	started     bool // the head went to the host
	done        bool // the response is over
	buf         []byte
	head        []byte // the encoded head, built in a reused buffer
	written     int64
	declared    int64 // Content-Length the handler set, or -1
	err         error
}

// Header returns the header map that WriteHeader sends.
func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader sends the status code (once; 1xx codes are not sent).
func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.wroteHeader {
		log.Printf("http: superfluous response.WriteHeader call")
		return
	}
	if code < 200 {
		return
	}
	w.wroteHeader = true
	w.status = code
	w.sent = w.header.Clone()
	w.declared = -1
	if cl := headerValue(w.sent, "Content-Length"); cl != "" {
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
			w.declared = v
		} else {
			log.Printf("http: invalid Content-Length of %q", cl)
			w.sent.Del("Content-Length")
		}
	}
}

func bodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199 || status == 204 || status == 304)
}

// Write adds to the body, sending the head first if it has not gone.
func (w *responseWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, http.ErrHandlerTimeout
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	if w.err != nil {
		return 0, w.err
	}
	w.written += int64(len(p))
	if w.req.Method == "HEAD" {
		if !w.started && len(w.buf) < bufferBeforeChunking {
			w.buf = append(w.buf, p[:min(len(p), bufferBeforeChunking-len(w.buf))]...)
		}
		return len(p), nil
	}
	if !w.started {
		if len(w.buf)+len(p) <= bufferBeforeChunking {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		if err := w.start(false); err != nil {
			return 0, err
		}
	}
	if len(w.buf)+len(p) < flushAt {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if err := w.flushBuf(); err != nil {
		return 0, err
	}
	if err := w.send(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteString is Write for a string, without a conversion by the caller.
func (w *responseWriter) WriteString(s string) (int, error) {
	return w.Write([]byte(s))
}

// start sends the head, with the body held so far; with end, the body is
// whole and the response over.
func (w *responseWriter) start(end bool) error {
	h := w.sent
	if bodyAllowed(w.status) {
		_, haveType := h["Content-Type"]
		if !haveType && headerValue(h, "Content-Encoding") == "" && headerValue(h, "Transfer-Encoding") == "" && len(w.buf) > 0 {
			h["Content-Type"] = []string{http.DetectContentType(w.buf)}
		}
	} else {
		delete(h, "Content-Type")
		delete(h, "Content-Length")
		delete(h, "Transfer-Encoding")
	}
	if w.req.Method == "HEAD" && end && w.declared < 0 && len(w.buf) > 0 {
		h["Content-Length"] = []string{strconv.Itoa(int(w.written))}
	}
	body := w.buf
	if w.req.Method == "HEAD" {
		body = nil
	}
	head := appendFields(w.head[:0], h, isTrailerKey)
	w.head = head
	flag := int32(0)
	if end {
		flag = 1
	}
	w.started = true
	n := hostHTTPRespond(w.r.id, int32(w.status), ptr(head), int32(len(head)), ptr(body), int32(len(body)), flag)
	w.buf = w.buf[:0]
	if end {
		w.done = true
		w.r.ended = true
	}
	if n < 0 {
		return w.fail(n)
	}
	return nil
}

// fail records why the response cannot go on.
func (w *responseWriter) fail(code int32) error {
	switch code {
	case resultGone:
		w.r.leave()
		w.err = errClientGone
	default:
		w.err = lastError()
	}
	return w.err
}

// send writes p to the host, waiting while the host's window is full.
func (w *responseWriter) send(p []byte) error {
	for len(p) > 0 {
		n := hostHTTPWrite(w.r.id, ptr(p), int32(len(p)))
		switch {
		case n >= 0:
			p = p[n:]
		case n == resultAgain:
			select {
			case <-w.r.channel(&w.r.writable):
			case <-w.r.goneChan():
				w.err = errClientGone
				return w.err
			}
		default:
			return w.fail(n)
		}
	}
	return nil
}

func (w *responseWriter) flushBuf() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.send(w.buf)
	w.buf = w.buf[:0]
	return err
}

// Flush sends what the handler wrote so far.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush, reporting a failure (http.ResponseController uses
// it).
func (w *responseWriter) FlushError() error {
	if w.done {
		return w.err
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.started {
		if err := w.start(false); err != nil {
			return err
		}
		return nil
	}
	return w.flushBuf()
}

// errHijack says why Hijack cannot work here.
var errHijack = errors.New("wasabi: Hijack is not supported when the host serves HTTP " +
	"(wasabi.Serve, wasabi.ListenAndServe): the connection is the host's; " +
	"serve with wasabi.Listen and http.Serve to take over connections")

// Hijack is not possible: the host owns the connection.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, errHijack
}

// finish ends the response once the handler has returned.
func (w *responseWriter) finish() {
	if w.done {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.started {
		if w.trailerKeys() == nil {
			w.start(true)
			return
		}
		if w.start(false) != nil {
			return
		}
	}
	if w.err == nil && w.req.Method != "HEAD" {
		w.flushBuf()
	}
	w.done = true
	w.r.ended = true
	if w.err != nil {
		hostHTTPAbort(w.r.id)
		return
	}
	var trailers []byte
	if keys := w.trailerKeys(); keys != nil {
		t := http.Header{}
		for _, k := range keys {
			if v, ok := w.header[k]; ok {
				t[k] = v
			}
		}
		for k, v := range w.header {
			if strings.HasPrefix(k, http.TrailerPrefix) {
				t[k[len(http.TrailerPrefix):]] = v
			}
		}
		trailers = appendFields(nil, t, nil)
	}
	hostHTTPFinish(w.r.id, ptr(trailers), int32(len(trailers)))
}

// trailerKeys are the trailers the handler declared (in a Trailer header
// before WriteHeader, or with http.TrailerPrefix).
func (w *responseWriter) trailerKeys() []string {
	var keys []string
	for _, v := range w.sent["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" {
				keys = append(keys, k)
			}
		}
	}
	for k := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			keys = append(keys, k)
		}
	}
	return keys
}

// headerValue is h.Get for a key already in canonical form.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func isTrailerKey(k string) bool { return strings.HasPrefix(k, http.TrailerPrefix) }

// appendFields writes a header block in the host's layout: a count, then
// each name and value with its length, names in sorted order as Go's own
// server writes them.
func appendFields(b []byte, h http.Header, skip func(string) bool) []byte {
	var small [16]string
	keys := small[:0]
	count := 0
	for k, vs := range h {
		if skip == nil || !skip(k) {
			keys = append(keys, k)
			count += len(vs)
		}
	}
	slices.Sort(keys)
	b = binary.LittleEndian.AppendUint32(b, uint32(count))
	for _, k := range keys {
		for _, v := range h[k] {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(k)))
			b = append(b, k...)
			b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		}
	}
	return b
}
