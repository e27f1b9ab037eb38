//go:build js && wasm

// Command fetch-js uses fetch, Response and Promise through syscall/js, as
// a Go program written for the browser or Node.js does: promise chains
// whose Go callbacks return values and promises, new Promise with a Go
// executor, catch and finally, and a response body read with text(),
// json() and arrayBuffer(). Its output is the same under Node.js.
//
// Usage: fetch-js BASE-URL, where the server answers /hello, /echo,
// /bytes/N and /redirect/NNN?URL (wasabi_net::testbed).
package main

import (
	"fmt"
	"os"
	"syscall/js"
)

var global = js.Global()

// await waits for a promise: its value, or the reason it rejected.
func await(p js.Value) (js.Value, bool) {
	type outcome struct {
		v  js.Value
		ok bool
	}
	ch := make(chan outcome, 1)
	onOK := js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- outcome{args[0], true}
		return nil
	})
	onErr := js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- outcome{args[0], false}
		return nil
	})
	defer onOK.Release()
	defer onErr.Release()
	p.Call("then", onOK, onErr)
	o := <-ch
	return o.v, o.ok
}

func show(what string, v js.Value, ok bool) {
	if !ok {
		fmt.Printf("%s: rejected: %s\n", what, v.Get("message").String())
		return
	}
	fmt.Printf("%s: %s\n", what, v.String())
}

func main() {
	base := os.Args[1]

	// A Go executor, a Go callback returning a value, then one returning a
	// promise (which the chain follows).
	executor := js.FuncOf(func(_ js.Value, args []js.Value) any {
		args[0].Invoke(21)
		return nil
	})
	double := js.FuncOf(func(_ js.Value, args []js.Value) any {
		return args[0].Int() * 2
	})
	later := js.FuncOf(func(_ js.Value, args []js.Value) any {
		return global.Get("Promise").Call("resolve", fmt.Sprintf("the answer is %d", args[0].Int()))
	})
	p := global.Get("Promise").New(executor).Call("then", double).Call("then", later)
	v, ok := await(p)
	show("chain", v, ok)

	// A throwing executor rejects; catch recovers; finally passes through.
	thrower := js.FuncOf(func(_ js.Value, args []js.Value) any {
		args[1].Invoke(global.Get("Error").New("refused by the executor"))
		return nil
	})
	recovered := js.FuncOf(func(_ js.Value, args []js.Value) any {
		return "recovered from: " + args[0].Get("message").String()
	})
	finallyRan := false
	cleanup := js.FuncOf(func(_ js.Value, args []js.Value) any {
		finallyRan = true
		return "ignored"
	})
	v, ok = await(global.Get("Promise").New(thrower).Call("catch", recovered).Call("finally", cleanup))
	show("catch", v, ok)
	fmt.Println("finally ran:", finallyRan)
	v, ok = await(global.Get("Promise").Call("reject", global.Get("Error").New("plain rejection")).Call("finally", cleanup))
	show("finally", v, ok)

	// text(), and a Go callback that returns the promise text() makes.
	toText := js.FuncOf(func(_ js.Value, args []js.Value) any {
		return args[0].Call("text")
	})
	v, ok = await(global.Call("fetch", base+"/hello").Call("then", toText))
	show("text", v, ok)

	// json() of a POSTed body the server echoes.
	opts := map[string]any{"method": "POST", "body": `{"list":[1,2,{"name":"wasabi"}],"n":1.5,"ok":true}`}
	resp, ok := await(global.Call("fetch", base+"/echo", opts))
	if !ok {
		show("json", resp, ok)
		os.Exit(1)
	}
	fmt.Println("bodyUsed before:", resp.Get("bodyUsed").Bool())
	v, ok = await(resp.Call("json"))
	if ok {
		fmt.Println("json:", v.Get("list").Index(2).Get("name").String(), v.Get("n").Float(), v.Get("ok").Bool(), v.Get("list").Length())
	} else {
		show("json", v, ok)
	}
	fmt.Println("bodyUsed after:", resp.Get("bodyUsed").Bool())
	v, ok = await(resp.Call("text"))
	fmt.Println("read twice rejected:", !ok)

	// Bad JSON rejects.
	resp, _ = await(global.Call("fetch", base+"/echo", map[string]any{"method": "POST", "body": "{not json"}))
	_, ok = await(resp.Call("json"))
	fmt.Println("bad json rejected:", !ok)

	// arrayBuffer(), wrapped as Go's own transport wraps it.
	resp, _ = await(global.Call("fetch", base+"/bytes/100000"))
	buf, ok := await(resp.Call("arrayBuffer"))
	if ok {
		u8 := global.Get("Uint8Array").New(buf)
		data := make([]byte, u8.Get("byteLength").Int())
		js.CopyBytesToGo(data, u8)
		sum := 0
		for i, b := range data {
			if int(b) != i*7%251 {
				fmt.Println("arrayBuffer: wrong byte at", i)
				os.Exit(1)
			}
			sum += int(b)
		}
		fmt.Println("arrayBuffer:", len(data), "bytes, sum", sum)
	} else {
		show("arrayBuffer", buf, ok)
	}

	// Redirect modes.
	target := base + "/redirect/302?" + base + "/hello"
	resp, _ = await(global.Call("fetch", target))
	fmt.Println("follow:", resp.Get("status").Int(), resp.Get("redirected").Bool(), resp.Get("url").String() == base+"/hello")
	resp, _ = await(global.Call("fetch", target, map[string]any{"redirect": "manual"}))
	fmt.Println("manual:", resp.Get("status").Int(), resp.Get("redirected").Bool())
	_, ok = await(global.Call("fetch", target, map[string]any{"redirect": "error"}))
	fmt.Println("error mode rejected:", !ok)
}
