// Command timers exercises the event loop: goroutines, channels, select,
// sleeps, tickers, AfterFunc and context deadlines. Its output is the same
// on every run and on every platform.
package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

func main() {
	// Goroutines and a WaitGroup, finishing in the order their sleeps dictate.
	var wg sync.WaitGroup
	results := make(chan int, 3)
	for _, d := range []int{30, 10, 20} {
		wg.Add(1)
		go func(ms int) {
			defer wg.Done()
			time.Sleep(time.Duration(ms) * time.Millisecond)
			results <- ms
		}(d)
	}
	wg.Wait()
	close(results)
	for ms := range results {
		fmt.Printf("slept %dms\n", ms)
	}

	// A ticker delivers ticks until stopped.
	ticker := time.NewTicker(5 * time.Millisecond)
	ticks := 0
	for range ticker.C {
		ticks++
		if ticks == 5 {
			ticker.Stop()
			break
		}
	}
	fmt.Printf("ticks: %d\n", ticks)

	// select picks whichever channel is ready first.
	fast, slow := make(chan string), make(chan string)
	go func() { time.Sleep(40 * time.Millisecond); slow <- "slow" }()
	go func() { time.Sleep(5 * time.Millisecond); fast <- "fast" }()
	for i := 0; i < 2; i++ {
		select {
		case m := <-fast:
			fmt.Println("select got", m)
		case m := <-slow:
			fmt.Println("select got", m)
		}
	}

	// select with a timeout.
	never := make(chan struct{})
	select {
	case <-never:
		fmt.Println("impossible")
	case <-time.After(15 * time.Millisecond):
		fmt.Println("timed out waiting, as expected")
	}

	// AfterFunc runs in its own goroutine; Stop cancels a pending one.
	fired := make(chan string, 1)
	time.AfterFunc(10*time.Millisecond, func() { fired <- "after-func fired" })
	cancelled := time.AfterFunc(time.Hour, func() { fmt.Println("must not run") })
	fmt.Println("stopped pending after-func:", cancelled.Stop())
	fmt.Println(<-fired)

	// A context deadline ends a wait.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	<-ctx.Done()
	fmt.Println("context:", ctx.Err(), errors.Is(ctx.Err(), context.DeadlineExceeded))
	if elapsed := time.Since(start); elapsed < 20*time.Millisecond {
		fmt.Println("deadline fired early:", elapsed)
	}

	// A producer/consumer pipeline over unbuffered channels.
	nums := make(chan int)
	squares := make(chan int)
	go func() {
		for i := 1; i <= 5; i++ {
			nums <- i
		}
		close(nums)
	}()
	go func() {
		for n := range nums {
			squares <- n * n
		}
		close(squares)
	}()
	sum := 0
	for s := range squares {
		sum += s
	}
	fmt.Println("sum of squares:", sum)

	// Timers are monotonic: a 25ms sleep takes at least 25ms.
	t0 := time.Now()
	time.Sleep(25 * time.Millisecond)
	fmt.Println("sleep took at least 25ms:", time.Since(t0) >= 25*time.Millisecond)
	fmt.Println("done")
}
