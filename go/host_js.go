//go:build js && wasm

package wasabi

import (
	"errors"
	"sync"
	"syscall"
	"syscall/js"
	"unsafe"
)

// The runtime's own imports (module "wasabi"): integer arguments, bytes
// copied straight to and from this program's memory, no syscall/js values
// per call. Nothing blocks: a call that cannot go on yet returns resultAgain,
// and the host rings a token (a kind in the upper 32 bits, the socket's or
// request's id in the lower) when it may. The host then calls onWake, which
// takes the tokens with poll and wakes the goroutines waiting for them.
//
// A program that imports these runs only under Wasabi: elsewhere (Node.js)
// it fails to instantiate, naming the missing "wasabi" import.

//go:wasmimport wasabi poll
func hostPoll(buf unsafe.Pointer, size int32) int32

//go:wasmimport wasabi last_error
func hostLastError(buf unsafe.Pointer, size int32) int32

// Result codes of the imports.
const (
	resultAgain    = -1
	resultGone     = -2
	resultTooLarge = -3
	resultFailed   = -4
	// A failed socket call returns -(errnoBase + errno).
	errnoBase = 256
)

// What a token from poll says, in its upper 32 bits.
const (
	tokenAccept         = 1 // requests wait to be taken
	tokenReadable       = 2 // a request's body has bytes
	tokenWritable       = 3 // a response has room
	tokenGone           = 4 // a request's client went away
	tokenSocketReadable = 5 // a socket has data, its end, or a connection
	tokenSocketWritable = 6 // a socket has room, or its dial finished
)

// errNoRuntime is returned when the program does not run under Wasabi.
var errNoRuntime = errors.New("wasabi: networking needs the Wasabi runtime " +
	"(globalThis.wasabi is missing): run this program with `wasabi run`")

var (
	hostOnce sync.Once
	hostErr  error
)

// startHost registers onWake with the host, once.
func startHost() error {
	hostOnce.Do(func() {
		w := js.Global().Get("wasabi")
		if w.Type() != js.TypeObject || w.Get("net").Type() != js.TypeObject {
			hostErr = errNoRuntime
			return
		}
		// The callback lives as long as the program: it is never released.
		w.Get("net").Call("setWake", js.FuncOf(onWake))
	})
	return hostErr
}

// onWake is called by the host, with no arguments, when poll has tokens.
// It runs on the event goroutine: it only wakes goroutines, never blocks.
func onWake(js.Value, []js.Value) any {
	var tokens [256]uint64
	for {
		n := int(hostPoll(unsafe.Pointer(&tokens[0]), int32(len(tokens))))
		for _, t := range tokens[:n] {
			kind, id := int(t>>32), int32(uint32(t))
			switch kind {
			case tokenSocketReadable, tokenSocketWritable:
				deliverSocket(kind, id)
			default:
				deliverRequest(kind, id)
			}
		}
		if n < len(tokens) {
			return nil
		}
	}
}

// signal wakes whoever waits on ch, or the next one to wait.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

// lastErrorText is the host's message for the last failed call.
func lastErrorText() string {
	var small [256]byte
	n := hostLastError(ptr(small[:]), int32(len(small)))
	if int(n) <= len(small) {
		return string(small[:n])
	}
	big := make([]byte, n)
	hostLastError(ptr(big), n)
	return string(big)
}

// lastError is the host's message for the last failed call, as an error.
func lastError() error {
	return errors.New("wasabi: " + lastErrorText())
}

// hostError is a failed socket call: the host's message, and the errno it
// names, so errors.Is(err, syscall.ECONNREFUSED) and
// errors.Is(err, os.ErrPermission) work as they do natively.
type hostError struct {
	msg   string
	errno syscall.Errno
}

func (e *hostError) Error() string { return e.msg }

func (e *hostError) Unwrap() error {
	if e.errno == 0 {
		return nil
	}
	return e.errno
}

// Timeout reports whether the error is a timeout.
func (e *hostError) Timeout() bool { return e.errno == syscall.ETIMEDOUT }

// Temporary reports whether retrying may succeed (a full socket table).
func (e *hostError) Temporary() bool {
	return e.errno == syscall.EMFILE || e.errno == syscall.EINTR || e.Timeout()
}

// socketError is the error of a failed socket call's result r.
func socketError(r int32) error {
	e := &hostError{msg: lastErrorText()}
	if r <= -errnoBase {
		e.errno = syscall.Errno(-r - errnoBase)
	}
	return e
}
