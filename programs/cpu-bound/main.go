// Command cpu-bound does a fixed amount of computation — hashing, JSON and
// sorting — and prints digests of the results, identical on every platform.
// It is both a correctness check and the CPU benchmark's workload.
package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
)

type record struct {
	ID    int               `json:"id"`
	Name  string            `json:"name"`
	Score float64           `json:"score"`
	Tags  []string          `json:"tags"`
	Attrs map[string]string `json:"attrs"`
}

func main() {
	scale := 1
	if len(os.Args) > 1 {
		if n, err := strconv.Atoi(os.Args[1]); err == nil && n > 0 {
			scale = n
		}
	}
	rng := rand.New(rand.NewSource(42))

	// SHA-256 over 4 MiB per scale step, chained.
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = byte(rng.Intn(256))
	}
	sum := sha256.Sum256(nil)
	for i := 0; i < 4*scale; i++ {
		h := sha256.New()
		h.Write(sum[:])
		h.Write(block)
		copy(sum[:], h.Sum(nil))
	}
	fmt.Printf("sha256 chain: %x\n", sum)

	// JSON: marshal and unmarshal 20k records per scale step.
	records := make([]record, 20000*scale)
	for i := range records {
		records[i] = record{
			ID:    i,
			Name:  fmt.Sprintf("record-%d", rng.Intn(1_000_000)),
			Score: float64(rng.Intn(100000)) / 100,
			Tags:  []string{"a", strconv.Itoa(i % 7), "tag"},
			Attrs: map[string]string{"k": strconv.Itoa(i), "parity": strconv.Itoa(i % 2)},
		}
	}
	data, err := json.Marshal(records)
	if err != nil {
		panic(err)
	}
	var back []record
	if err := json.Unmarshal(data, &back); err != nil {
		panic(err)
	}
	fmt.Printf("json: %d bytes, %d records, sha256 %x\n", len(data), len(back), sha256.Sum256(data))

	// Sort 1M integers per scale step, and strings too.
	nums := make([]int, 1_000_000*scale)
	for i := range nums {
		nums[i] = rng.Int()
	}
	sort.Ints(nums)
	names := make([]string, len(back))
	for i, r := range back {
		names[i] = r.Name
	}
	sort.Strings(names)
	fmt.Printf("sort: min=%d max=%d median=%d first=%s last=%s\n",
		nums[0], nums[len(nums)-1], nums[len(nums)/2], names[0], names[len(names)-1])
}
