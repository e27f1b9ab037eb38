//go:build js && wasm

// Command js-interop exercises syscall/js against Wasabi's JS world: globals,
// objects and arrays, typed-array copies, js.FuncOf callbacks called by the
// host (through setTimeout) and by Go itself, and JS exceptions surfacing as
// js.Error panics.
package main

import (
	"errors"
	"fmt"
	"syscall/js"
)

func main() {
	global := js.Global()
	fmt.Println("globalThis is global:", global.Get("globalThis").Equal(global))
	fmt.Println("typeof Object:", global.Get("Object").Type())
	fmt.Println("typeof undefined thing:", global.Get("doesNotExist").Type())

	// Objects and properties.
	obj := global.Get("Object").New()
	obj.Set("name", "wasabi")
	obj.Set("answer", 42)
	obj.Set("nested", map[string]any{"ok": true, "list": []any{1, "two", 3.5}})
	fmt.Println("name:", obj.Get("name").String(), "answer:", obj.Get("answer").Int())
	nested := obj.Get("nested")
	fmt.Println("nested.ok:", nested.Get("ok").Bool(), "list length:", nested.Get("list").Length())
	fmt.Println("list[1]:", nested.Get("list").Index(1).String(), "list[2]:", nested.Get("list").Index(2).Float())
	obj.Delete("answer")
	fmt.Println("answer after delete is undefined:", obj.Get("answer").IsUndefined())
	keys := global.Get("Object").Call("keys", obj)
	fmt.Println("keys:", keys.Call("join", ",").String())

	// Arrays.
	arr := global.Get("Array").New()
	arr.Call("push", 1, 2, 3)
	arr.SetIndex(5, "six")
	fmt.Println("array length:", arr.Length(), "instanceof Array:", arr.InstanceOf(global.Get("Array")))
	fmt.Println("array joined:", arr.Call("join", "-").String())

	// Strings cross both ways, including non-ASCII.
	s := js.ValueOf("héllo, 世界")
	fmt.Println("string round trip:", s.String(), "equal:", s.Equal(js.ValueOf("héllo, 世界")))

	// Uint8Array copies.
	src := []byte("bytes from Go")
	u8 := global.Get("Uint8Array").New(len(src))
	n := js.CopyBytesToJS(u8, src)
	u8.SetIndex(0, 'B')
	dst := make([]byte, u8.Length())
	m := js.CopyBytesToGo(dst, u8)
	fmt.Printf("copied %d to JS and %d back: %q\n", n, m, dst)
	fmt.Println("Uint8Array instanceof:", u8.InstanceOf(global.Get("Uint8Array")), "byteLength:", u8.Get("byteLength").Int())

	// crypto.getRandomValues fills a typed array in place.
	rnd := global.Get("Uint8Array").New(32)
	global.Get("crypto").Call("getRandomValues", rnd)
	rb := make([]byte, 32)
	js.CopyBytesToGo(rb, rnd)
	nonzero := 0
	for _, b := range rb {
		if b != 0 {
			nonzero++
		}
	}
	fmt.Println("random bytes look random:", nonzero > 16)

	// A Go function called from Go through JS: the host re-enters Go.
	add := js.FuncOf(func(this js.Value, args []js.Value) any {
		return args[0].Int() + args[1].Int()
	})
	defer add.Release()
	fmt.Println("FuncOf called through JS:", add.Invoke(20, 22).Int())
	obj.Set("add", add)
	fmt.Println("FuncOf as a method:", obj.Call("add", 1, 2).Int())

	// Nested callbacks: Go calls JS calls Go calls JS calls Go.
	var inner js.Func
	inner = js.FuncOf(func(this js.Value, args []js.Value) any {
		return "inner(" + args[0].String() + ")"
	})
	defer inner.Release()
	outer := js.FuncOf(func(this js.Value, args []js.Value) any {
		return "outer(" + inner.Invoke(args[0]).String() + ")"
	})
	defer outer.Release()
	fmt.Println("nested:", outer.Invoke("x").String())

	// The host calls Go callbacks from its event loop through setTimeout.
	done := make(chan string)
	var order []string
	for _, d := range []int{30, 10, 20} {
		d := d
		var cb js.Func
		cb = js.FuncOf(func(this js.Value, args []js.Value) any {
			order = append(order, fmt.Sprintf("%dms:%s", d, args[0].String()))
			cb.Release()
			if len(order) == 3 {
				done <- "all timeouts fired"
			}
			return nil
		})
		global.Call("setTimeout", cb, d, fmt.Sprintf("arg%d", d))
	}
	cancelled := js.FuncOf(func(this js.Value, args []js.Value) any {
		fmt.Println("cancelled timeout must not fire")
		return nil
	})
	id := global.Call("setTimeout", cancelled, 5)
	global.Call("clearTimeout", id)
	fmt.Println(<-done, order)

	// JS exceptions are js.Error panics.
	err := catch(func() { global.Call("doesNotExist") })
	fmt.Println("calling a missing function:", err)
	err = catch(func() { global.Get("Uint8Array").Invoke(3) })
	fmt.Println("Uint8Array without new:", err)
	var jsErr js.Error
	fmt.Println("is js.Error:", errors.As(err, &jsErr))
	thrown := global.Get("Error").New("custom failure")
	fmt.Println("error message:", thrown.Get("message").String(), "| toString:", thrown.Call("toString").String())

	// Dates: UTC unless the tenant is given TZ.
	date := global.Get("Date").New(0)
	fmt.Println("epoch:", date.Call("toISOString").String(), "offset:", date.Call("getTimezoneOffset").Int())
	fmt.Println("Date.now is recent:", global.Get("Date").Call("now").Float() > 1.7e12)

	// console goes to stdout and stderr.
	global.Get("console").Call("log", "console.log:", 1, true, nil)
	global.Get("console").Call("error", "console.error goes to stderr")
	fmt.Println("done")
}

// catch runs f and returns the js.Error it panics with, if any.
func catch(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
				return
			}
			err = fmt.Errorf("%v", r)
		}
	}()
	f()
	return nil
}
