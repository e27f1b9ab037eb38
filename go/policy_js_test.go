//go:build js && wasm

package wasabi_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"wasabi.dev/go"
)

// Under Wasabi with --allow-listen=127.0.0.1 --allow-connect=127.0.0.1 (how
// CI runs these tests), anything else is denied with a message naming the
// flag.
func TestPolicyDenials(t *testing.T) {
	_, err := wasabi.Dial("tcp", "127.0.0.2:80")
	if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "--allow-connect=127.0.0.2:80") {
		t.Errorf("Dial outside the policy = %v", err)
	}
	_, err = wasabi.Listen("tcp", "0.0.0.0:0")
	if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "--allow-listen=0.0.0.0:0") {
		t.Errorf("Listen outside the policy = %v", err)
	}
}
