package probe

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// httptest servers listen on Go's in-process network under js/wasm, and
// net/http's client reaches them there, as under Go's own Node.js runner.
func TestHTTPTestServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Query().Get("name"))
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/?name=gopher")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "hello gopher" {
		t.Fatalf("body %q, %v", b, err)
	}
}
