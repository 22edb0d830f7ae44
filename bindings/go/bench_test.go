package aidb_test

import (
	"testing"

	aidb "aidb/bindings/go"
)

// BenchmarkSearch784 measures one search through the binding (1000 points,
// 784 dims, flat, top 10 with payloads); compare with
// tests/packaging/run_bench.sh for the ratio to the C API.
func BenchmarkSearch784(b *testing.B) {
	c, err := aidb.Open(aidb.CollectionOptions{Name: "bench", Dim: 784, Metric: aidb.Euclidean})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const n = 1000
	ids := make([]string, n)
	payloads := make([][]byte, n)
	flat := make([]float32, 0, n*784)
	for i := range ids {
		ids[i] = aidb.NewID()
		payloads[i] = []byte(`{"n":1}`)
		flat = append(flat, vec(i, 784)...)
	}
	if err := c.UpsertBatchFlat(ids, flat, payloads); err != nil {
		b.Fatal(err)
	}
	q := vec(7, 784)
	opts := &aidb.SearchOptions{TopK: 10}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Search(q, opts); err != nil {
			b.Fatal(err)
		}
	}
}
