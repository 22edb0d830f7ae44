// Command aidb-bench measures search QPS through the Go binding on the data
// set written by tests/packaging/bench/capi_search_bench (`prepare`), doing
// exactly what its `run` does: load the snapshot, run every query ROUNDS
// times on one goroutine, top 10 with payloads.
//
//	aidb-bench DIR [ROUNDS]
package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	aidb "aidb/bindings/go"
)

const dim = 784

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: aidb-bench DIR [ROUNDS]")
		os.Exit(2)
	}
	dir := os.Args[1]
	rounds := 3
	if len(os.Args) > 2 {
		rounds, _ = strconv.Atoi(os.Args[2])
	}
	c, err := aidb.Open(aidb.CollectionOptions{Name: "bench", Dim: dim, Metric: aidb.Euclidean,
		Index: aidb.HNSW, M: 16, EfConstruction: 100})
	if err != nil {
		fail(err)
	}
	defer c.Close()
	if err := c.LoadSnapshot(filepath.Join(dir, "bench.snapshot")); err != nil {
		fail(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "queries.f32"))
	if err != nil {
		fail(err)
	}
	q := make([]float32, len(raw)/4)
	for i := range q {
		q[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	nq := len(q) / dim
	opts := &aidb.SearchOptions{TopK: 10}
	hits := 0
	start, cpu0 := time.Now(), cpuTime()
	for r := 0; r < rounds; r++ {
		for i := 0; i < nq; i++ {
			h, err := c.Search(q[i*dim:(i+1)*dim], opts)
			if err != nil {
				fail(err)
			}
			hits += len(h)
		}
	}
	dt, dc := time.Since(start).Seconds(), cpuTime()-cpu0
	fmt.Printf("go qps=%.1f cpu_qps=%.1f queries=%d hits=%d\n", float64(nq*rounds)/dt,
		float64(nq*rounds)/dc, nq*rounds, hits)
}

// cpuTime is the process's user+system CPU time in seconds (all threads,
// the Go runtime's included).
func cpuTime() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fail(err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "aidb-bench:", err)
	os.Exit(1)
}
