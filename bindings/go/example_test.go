package aidb_test

import (
	"fmt"
	"os"
	"path/filepath"

	aidb "aidb/bindings/go"
)

// The README's flow: open with a WAL, upsert, filtered search, checkpoint,
// then restore into a fresh handle on the same WAL.
func Example() {
	dir, _ := os.MkdirTemp("", "aidb-example")
	defer os.RemoveAll(dir)
	wal, snap := filepath.Join(dir, "docs.wal"), filepath.Join(dir, "docs.snapshot")

	c, err := aidb.Open(aidb.CollectionOptions{Name: "docs", Dim: 3, Metric: aidb.Cosine, WALPath: wal})
	if err != nil {
		panic(err)
	}
	en := "00000000-0000-4000-8000-000000000001"
	_ = c.Upsert(en, []float32{0.1, 0.2, 0.3}, map[string]any{"lang": "en", "year": 2024})
	_ = c.Upsert("00000000-0000-4000-8000-000000000002", []float32{0.1, 0.2, 0.3}, `{"lang":"de","year":2001}`)
	hits, _ := c.Search([]float32{0.1, 0.2, 0.3}, &aidb.SearchOptions{
		TopK:   5,
		Filter: `{"must":[{"key":"year","range":{"gte":2020}}]}`,
	})
	fmt.Println(len(hits), hits[0].ID == en, string(hits[0].Payload))

	_ = c.SnapshotTo(snap) // checkpoint: the WAL is now empty
	ws, _ := c.WALStats()
	fmt.Println("wal bytes after checkpoint:", ws.SizeBytes)
	_ = c.Upsert("00000000-0000-4000-8000-000000000003", []float32{1, 0, 0}, nil)
	c.Close()

	r, _ := aidb.Open(aidb.CollectionOptions{Name: "docs", Dim: 3, WALPath: wal})
	defer r.Close()
	_ = r.LoadSnapshot(snap)
	st, _ := r.Recover(nil)
	n, _ := r.Count()
	fmt.Println("replayed", st.RecordsApplied, "points", n)
	// Output:
	// 1 true {"lang":"en","year":2024}
	// wal bytes after checkpoint: 0
	// replayed 1 points 3
}
