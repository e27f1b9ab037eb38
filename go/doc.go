// Package wasabi is the Go companion module of the Wasabi runtime: it gives
// Go programs built with GOOS=js GOARCH=wasm real TCP networking when they
// run under Wasabi, and falls back to the standard library everywhere else.
//
// The networking API (Listen, Dial, ListenAndServe, RoundTripper) arrives
// with Wasabi's networking support; today the package only documents itself.
package wasabi

// Version is the version of the companion module.
const Version = "0.1.0"
