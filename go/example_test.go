package wasabi_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"time"

	"wasabi.dev/go"
)

// Serve HTTP on a real socket. Under Wasabi, grant the address:
//
//	wasabi run --allow-listen=127.0.0.1:8080 server.wasm
func ExampleListenAndServe() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello from a Go js/wasm program")
	})
	log.Fatal(wasabi.ListenAndServe("127.0.0.1:8080", nil))
}

// Make HTTP requests through real sockets. Under Wasabi, grant the server:
//
//	wasabi run --allow-connect=example.com:80 client.wasm
func ExampleRoundTripper() {
	client := &http.Client{Transport: &wasabi.RoundTripper{}}
	resp, err := client.Get("http://example.com/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, len(body))
}

// Talk TCP: dial, write, half-close, and read the reply to the end.
func ExampleDial() {
	c, err := wasabi.Dial("tcp", "127.0.0.1:7007")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		log.Fatal(err)
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	reply, err := io.ReadAll(c)
	fmt.Printf("%s %v\n", reply, err)
}

// Accept connections and echo what they send.
func ExampleListen() {
	l, err := wasabi.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", l.Addr())
	for {
		c, err := l.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
		}()
	}
}

// Dial with a deadline: give up if the server does not answer within a second.
func ExampleDialContext() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := wasabi.DialContext(ctx, "tcp", "127.0.0.1:5432")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("connected to", c.RemoteAddr())
}
