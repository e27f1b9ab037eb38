// Command mem-hog allocates memory and keeps it until it dies: a tenant
// that must end at its memory limit without disturbing its neighbours.
package main

import (
	"fmt"
	"time"
)

func main() {
	var hoard [][]byte
	for i := 1; ; i++ {
		chunk := make([]byte, 1<<20)
		for j := range chunk {
			chunk[j] = byte(i + j)
		}
		hoard = append(hoard, chunk)
		if i%16 == 0 {
			fmt.Printf("holding %d MiB\n", i)
			time.Sleep(10 * time.Millisecond)
		}
	}
}
