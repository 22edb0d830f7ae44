package aidb_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	aidb "aidb/bindings/go"
)

// vec returns a deterministic vector of dim components for seed i.
func vec(i, dim int) []float32 {
	v := make([]float32, dim)
	for j := range v {
		v[j] = float32(math.Sin(float64(i*dim+j+1))) + float32(i%7)
	}
	return v
}

func mustOpen(t *testing.T, opts aidb.CollectionOptions) *aidb.Collection {
	t.Helper()
	c, err := aidb.Open(opts)
	if err != nil {
		t.Fatalf("Open(%+v): %v", opts, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mustCount(t *testing.T, c *aidb.Collection, want uint64) {
	t.Helper()
	n, err := c.Count()
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	if n != want {
		t.Fatalf("Count = %d, want %d", n, want)
	}
}

func TestVersionMatchesHeader(t *testing.T) {
	if aidb.VersionNumber() != aidb.HeaderVersionNumber {
		t.Fatalf("library %d (%s) != header %d", aidb.VersionNumber(), aidb.Version(), aidb.HeaderVersionNumber)
	}
	if aidb.Version() == "" {
		t.Fatal("empty version")
	}
}

func TestIDsAreCanonicalised(t *testing.T) {
	id := aidb.NewID()
	if len(id) != 36 {
		t.Fatalf("NewID() = %q", id)
	}
	got, err := aidb.CanonicalID("{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}")
	if err != nil || got != "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" {
		t.Fatalf("CanonicalID = %q, %v", got, err)
	}
	if _, err := aidb.CanonicalID("not-a-uuid"); !errors.Is(err, aidb.ErrInvalidArgument) {
		t.Fatalf("CanonicalID(bad) err = %v", err)
	}
}

// Quantization and VectorsOnDisk reach the library and come back in Info; a
// collection without a WAL has no place for the vectors file.
func TestVectorsOnDiskAndQuantization(t *testing.T) {
	dir := t.TempDir()
	for i, q := range []aidb.Quantization{aidb.QuantizationSQ8, aidb.QuantizationNone} {
		wal := filepath.Join(dir, fmt.Sprintf("od%d.wal", i))
		c := mustOpen(t, aidb.CollectionOptions{Name: "od", Dim: 8, Metric: aidb.Euclidean,
			Index: aidb.HNSW, WALPath: wal, Quantization: q, VectorsOnDisk: true})
		info, err := c.Info()
		if err != nil || info.Quantization != q || !info.VectorsOnDisk {
			t.Fatalf("Info = %+v, %v; want quantization %v on disk", info, err, q)
		}
		id := aidb.NewID()
		if err := c.Upsert(id, vec(1, 8), nil); err != nil {
			t.Fatal(err)
		}
		got, _, err := c.Get(id)
		if err != nil || len(got) != 8 || got[3] != vec(1, 8)[3] {
			t.Fatalf("Get = %v, %v", got, err)
		}
		if _, err := os.Stat(wal + ".vectors"); err != nil {
			t.Fatalf("vectors file: %v", err)
		}
		c.Close()
	}
	if _, err := aidb.Open(aidb.CollectionOptions{Name: "mem", Dim: 8, VectorsOnDisk: true}); !errors.Is(err, aidb.ErrInvalidArgument) {
		t.Fatalf("vectors on disk without a WAL: err = %v", err)
	}
}

// An IVF collection with its vectors on disk (trained: more than 2048
// points): the IVF parameters reach the library and come back in Info,
// SetEfSearch sets the partitions probed, the configured re-rank of 10
// candidates misses some exact hits while a search probing every partition
// with a per-query re-rank of all points returns the exact scan's hits
// (single and batch), and a snapshot + restore keeps both the parameters and
// the answers.
func TestIVFWithVectorsOnDisk(t *testing.T) {
	const n, dim, nq = 3000, 16, 20
	dir := t.TempDir()
	opts := aidb.CollectionOptions{Name: "ivf", Dim: dim, Metric: aidb.Euclidean, Index: aidb.IVF,
		WALPath: filepath.Join(dir, "ivf.wal"), VectorsOnDisk: true,
		IVFNList: 8, IVFNProbe: 2, IVFRerank: 10}
	c := mustOpen(t, opts)
	ids := make([]string, n)
	flat := make([]float32, 0, n*dim)
	for i := range ids {
		ids[i] = aidb.NewID()
		flat = append(flat, vec(i, dim)...)
	}
	if err := c.UpsertBatchFlat(ids, flat, nil); err != nil {
		t.Fatal(err)
	}
	info, err := c.Info()
	if err != nil || info.Index != aidb.IVF || !info.VectorsOnDisk ||
		info.IVFNList != 8 || info.IVFNProbe != 2 || info.IVFRerank != 10 {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	if err := c.SetEfSearch(8); err != nil {
		t.Fatal(err)
	}
	if info, _ := c.Info(); info.IVFNProbe != 8 {
		t.Fatalf("IVFNProbe after SetEfSearch(8) = %d", info.IVFNProbe)
	}
	queries := make([]float32, 0, nq*dim)
	for q := 0; q < nq; q++ {
		queries = append(queries, vec(n+q, dim)...)
	}
	all := &aidb.SearchOptions{TopK: 10, EfSearch: 8, IVFRerank: n, WithoutPayload: true}
	exact := &aidb.SearchOptions{TopK: 10, Exact: true, WithoutPayload: true}
	same := func(c *aidb.Collection, what string) {
		t.Helper()
		want, err := c.SearchBatch(queries, nq, exact)
		if err != nil {
			t.Fatal(err)
		}
		narrow, err := c.SearchBatch(queries, nq, &aidb.SearchOptions{TopK: 10, WithoutPayload: true})
		if err != nil {
			t.Fatal(err)
		}
		differs := false
		for q := range want {
			for i := range want[q] {
				differs = differs || narrow[q][i].ID != want[q][i].ID
			}
		}
		if !differs {
			t.Fatalf("%s: re-ranking 10 candidates found every exact hit: not an IVF search", what)
		}
		got, err := c.SearchBatch(queries, nq, all)
		if err != nil {
			t.Fatal(err)
		}
		for q := 0; q < nq; q++ {
			one, err := c.Search(queries[q*dim:(q+1)*dim], all)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want[q] {
				if got[q][i].ID != want[q][i].ID || one[i].ID != want[q][i].ID {
					t.Fatalf("%s: query %d hit %d: batch %s, single %s, exact %s", what, q, i,
						got[q][i].ID, one[i].ID, want[q][i].ID)
				}
			}
		}
	}
	same(c, "before restart")
	snap := filepath.Join(dir, "ivf.snapshot")
	if err := c.SnapshotTo(snap); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := os.Remove(opts.WALPath + ".vectors"); err != nil {
		t.Fatal(err) // rebuilt from the snapshot at the next open
	}
	r := mustOpen(t, opts)
	if err := r.LoadSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Recover(nil); err != nil {
		t.Fatal(err)
	}
	mustCount(t, r, n)
	if info, _ := r.Info(); info.IVFNList != 8 || info.IVFNProbe != 8 || info.IVFRerank != 10 {
		t.Fatalf("Info after restore = %+v", info)
	}
	same(r, "after restore")
}

// Checkpoint and restore as docs/operations.md describes them: checkpoint
// (snapshot truncates the WAL to zero bytes), more writes, then restore into
// a fresh collection on the same WAL path by loading the snapshot and
// replaying the WAL.
func TestCheckpointThenRestoreSeesPointsFromBeforeAndAfter(t *testing.T) {
	dir := t.TempDir()
	wal := filepath.Join(dir, "docs.wal")
	snap := filepath.Join(dir, "docs.snapshot")
	opts := aidb.CollectionOptions{Name: "docs", Dim: 8, Metric: aidb.Euclidean, WALPath: wal}

	c, err := aidb.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	before := []string{aidb.NewID(), aidb.NewID(), aidb.NewID()}
	for i, id := range before {
		if err := c.Upsert(id, vec(i, 8), map[string]any{"phase": "before", "i": i}); err != nil {
			t.Fatal(err)
		}
	}
	ws, err := c.WALStats()
	if err != nil || ws.SizeBytes == 0 || ws.LastTruncate != nil {
		t.Fatalf("WAL before checkpoint: %+v, %v", ws, err)
	}
	if err := c.SnapshotTo(snap); err != nil {
		t.Fatal(err)
	}
	ws, err = c.WALStats()
	if err != nil {
		t.Fatal(err)
	}
	if ws.SizeBytes != 0 || ws.LastTruncate == nil {
		t.Fatalf("WAL after checkpoint: size %d, last truncate %v; want 0 and set", ws.SizeBytes, ws.LastTruncate)
	}
	after := []string{aidb.NewID(), aidb.NewID()}
	for i, id := range after {
		if err := c.Upsert(id, vec(10+i, 8), []byte(`{"phase":"after"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Delete(before[2]); err != nil {
		t.Fatal(err)
	}
	c.Close()

	r := mustOpen(t, opts)
	if err := r.LoadSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	mustCount(t, r, 3) // the snapshot alone
	st, err := r.Recover(nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.RecordsApplied != 3 || st.TornTail {
		t.Fatalf("Recover stats %+v: want 3 records applied, no torn tail", st)
	}
	mustCount(t, r, 4)
	for _, id := range append(before[:2], after...) {
		if _, _, err := r.Get(id); err != nil {
			t.Fatalf("Get(%s) after restore: %v", id, err)
		}
	}
	if _, _, err := r.Get(before[2]); !errors.Is(err, aidb.ErrNotFound) {
		t.Fatalf("deleted point after restore: err = %v, want ErrNotFound", err)
	}
	hits, err := r.Search(vec(10, 8), &aidb.SearchOptions{TopK: 1})
	if err != nil || len(hits) != 1 || hits[0].ID != after[0] {
		t.Fatalf("Search after restore = %+v, %v; want %s", hits, err, after[0])
	}
	pl, err := hits[0].PayloadMap()
	if err != nil || pl["phase"] != "after" {
		t.Fatalf("payload %s: %v", hits[0].Payload, err)
	}
	// Sealing the restored state as the new baseline empties the WAL again.
	if err := r.SnapshotTo(snap); err != nil {
		t.Fatal(err)
	}
	if ws, _ := r.WALStats(); ws.SizeBytes != 0 {
		t.Fatalf("WAL after sealing: %d bytes", ws.SizeBytes)
	}
	if info, err := aidb.VerifySnapshot(snap); err != nil || info.Count != 4 {
		t.Fatalf("VerifySnapshot = %+v, %v", info, err)
	}
}

func TestDatabaseDirectoryPersistsSnapshotsAndRestores(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	db, err := aidb.OpenDB(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := db.CreateCollection(aidb.CollectionOptions{Name: "items", Dim: 4, Index: aidb.HNSW})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateCollection(aidb.CollectionOptions{Name: "items", Dim: 4}); !errors.Is(err, aidb.ErrAlreadyExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	ids := []string{aidb.NewID(), aidb.NewID(), aidb.NewID()}
	if err := c.Upsert(ids[0], vec(0, 4), nil); err != nil {
		t.Fatal(err)
	}
	path, err := db.Snapshot("items")
	if err != nil || path == "" {
		t.Fatalf("Snapshot = %q, %v", path, err)
	}
	if err := c.UpsertBatch([]aidb.Point{{ID: ids[1], Vector: vec(1, 4)}, {ID: ids[2], Vector: vec(2, 4), Payload: map[string]any{"k": 1}}}); err != nil {
		t.Fatal(err)
	}
	snaps, err := db.Snapshots("items")
	if err != nil || len(snaps) != 1 || snaps[0].Count != 1 {
		t.Fatalf("Snapshots = %+v, %v", snaps, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// DB.Close closed the collection handle too.
	if err := c.Upsert(aidb.NewID(), vec(3, 4), nil); !errors.Is(err, aidb.ErrClosed) {
		t.Fatalf("collection after DB.Close: %v", err)
	}

	db, err = aidb.OpenDB(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	names, err := db.Collections()
	if err != nil || len(names) != 1 || names[0] != "items" {
		t.Fatalf("Collections = %v, %v", names, err)
	}
	c, err = db.Collection("items")
	if err != nil {
		t.Fatal(err)
	}
	mustCount(t, c, 3) // snapshot + WAL replay on open
	if err := db.Restore("items", filepath.Base(path)); err != nil {
		t.Fatal(err)
	}
	mustCount(t, c, 3) // snapshot + the WAL records after it
	if _, err := db.Collection("nope"); !errors.Is(err, aidb.ErrNotFound) {
		t.Fatalf("Collection(nope): %v", err)
	}
	if err := db.DropCollection("items"); err != nil {
		t.Fatal(err)
	}
	if names, _ := db.Collections(); len(names) != 0 {
		t.Fatalf("after drop: %v", names)
	}
	if err := c.Upsert(aidb.NewID(), vec(9, 4), nil); !errors.Is(err, aidb.ErrNotFound) {
		t.Fatalf("handle of dropped collection: %v", err)
	}
}

func TestFilteredSearchReturnsOnlyMatches(t *testing.T) {
	c := mustOpen(t, aidb.CollectionOptions{Name: "f", Dim: 8, Metric: aidb.Dot, Durability: aidb.DurabilityNone})
	const n = 500
	ids := make([]string, n)
	flat := make([]float32, 0, n*8)
	payloads := make([][]byte, n)
	for i := range ids {
		ids[i] = aidb.NewID()
		flat = append(flat, vec(i, 8)...)
		payloads[i] = []byte(fmt.Sprintf(`{"group":%d,"meta":{"rank":%d}}`, i%50, i))
	}
	if err := c.UpsertBatchFlat(ids, flat, payloads); err != nil {
		t.Fatal(err)
	}
	mustCount(t, c, n)
	// Very selective short-form filter: 10 of 500 points match, all 10 come back.
	hits, err := c.Search(vec(1, 8), &aidb.SearchOptions{TopK: 10, Filter: map[string]any{"group": 7}})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 10 {
		t.Fatalf("got %d hits, want 10", len(hits))
	}
	for _, h := range hits {
		var p struct{ Group int }
		if err := json.Unmarshal(h.Payload, &p); err != nil || p.Group != 7 {
			t.Fatalf("hit %s payload %s", h.ID, h.Payload)
		}
	}
	// Full form with a range on a dotted path, without payloads.
	hits, err = c.Search(vec(1, 8), &aidb.SearchOptions{TopK: 100, WithoutPayload: true,
		Filter: `{"must":[{"key":"meta.rank","range":{"gte":10,"lt":20}}]}`})
	if err != nil || len(hits) != 10 {
		t.Fatalf("range filter: %d hits, %v", len(hits), err)
	}
	for i := 1; i < len(hits); i++ {
		if hits[i].Score < hits[i-1].Score {
			t.Fatal("hits not sorted best (lowest distance) first")
		}
		if hits[i].Payload != nil {
			t.Fatal("payload returned although WithoutPayload")
		}
	}
	// Batch search with the same filter answers per query.
	res, err := c.SearchBatch(flat[:3*8], 3, &aidb.SearchOptions{TopK: 5, Filter: `{"group":3}`})
	if err != nil || len(res) != 3 {
		t.Fatalf("SearchBatch: %d, %v", len(res), err)
	}
	for _, hs := range res {
		if len(hs) != 5 {
			t.Fatalf("batch query got %d hits", len(hs))
		}
	}
	if _, err := c.Search(vec(1, 8), &aidb.SearchOptions{Filter: `{"must": [`}); !errors.Is(err, aidb.ErrInvalidArgument) {
		t.Fatalf("bad filter: %v", err)
	}
}

func TestConcurrentGoroutinesUpsertAndSearch(t *testing.T) {
	c := mustOpen(t, aidb.CollectionOptions{Name: "conc", Dim: 16, Index: aidb.HNSW,
		WALPath: filepath.Join(t.TempDir(), "wal"), Durability: aidb.DurabilityBatch})
	const workers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				v := vec(w*each+i, 16)
				if err := c.Upsert(aidb.NewID(), v, map[string]int{"w": w}); err != nil {
					errs <- err
					return
				}
				if _, err := c.Search(v, &aidb.SearchOptions{TopK: 3}); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	mustCount(t, c, workers*each)
}

func TestBadInputIsRejectedWithTheRightError(t *testing.T) {
	c := mustOpen(t, aidb.CollectionOptions{Name: "bad", Dim: 4})
	id := aidb.NewID()
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"wrong dim", c.Upsert(id, []float32{1, 2, 3}, nil), aidb.ErrDimensionMismatch},
		{"NaN", c.Upsert(id, []float32{1, float32(math.NaN()), 3, 4}, nil), aidb.ErrInvalidArgument},
		{"Inf", c.Upsert(id, []float32{1, float32(math.Inf(1)), 3, 4}, nil), aidb.ErrInvalidArgument},
		{"bad UUID", c.Upsert("xyz", []float32{1, 2, 3, 4}, nil), aidb.ErrInvalidArgument},
		// A NUL must not cut a string short: "<uuid>\x00junk" is not <uuid>.
		{"UUID then NUL", c.Upsert(id+"\x00junk", []float32{1, 2, 3, 4}, nil), aidb.ErrInvalidArgument},
		{"batch id then NUL", c.UpsertBatch([]aidb.Point{{ID: id + "\x00", Vector: []float32{1, 2, 3, 4}}}), aidb.ErrInvalidArgument},
		{"canonical id then NUL", func() error { _, err := aidb.CanonicalID(id + "\x00"); return err }(), aidb.ErrInvalidArgument},
		{"name then NUL", func() error { _, err := aidb.Open(aidb.CollectionOptions{Name: "ok\x00x", Dim: 4}); return err }(), aidb.ErrInvalidArgument},
		{"bad JSON", c.Upsert(id, []float32{1, 2, 3, 4}, []byte(`{"a":`)), aidb.ErrInvalidArgument},
		{"non-object payload", c.Upsert(id, []float32{1, 2, 3, 4}, []byte(`[1,2]`)), aidb.ErrInvalidArgument},
		{"unencodable payload", c.Upsert(id, []float32{1, 2, 3, 4}, map[string]any{"f": func() {}}), aidb.ErrInvalidArgument},
		{"batch with one bad id", c.UpsertBatch([]aidb.Point{{ID: aidb.NewID(), Vector: []float32{1, 2, 3, 4}}, {ID: "nope", Vector: []float32{1, 2, 3, 4}}}), aidb.ErrInvalidArgument},
		{"delete missing", c.Delete(aidb.NewID()), aidb.ErrNotFound},
		{"search wrong dim", func() error { _, err := c.Search([]float32{1}, nil); return err }(), aidb.ErrDimensionMismatch},
		{"set_ef_search on flat", c.SetEfSearch(10), aidb.ErrUnsupported},
		{"bad name", func() error { _, err := aidb.Open(aidb.CollectionOptions{Name: "no spaces", Dim: 4}); return err }(), aidb.ErrInvalidArgument},
		{"zero dim", func() error { _, err := aidb.Open(aidb.CollectionOptions{Name: "z", Dim: 0}); return err }(), aidb.ErrInvalidArgument},
		{"missing snapshot", c.LoadSnapshot(filepath.Join(t.TempDir(), "none")), aidb.ErrNotFound},
	}
	for _, tc := range cases {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, tc.err, tc.want)
		}
		var e *aidb.Error
		if tc.err != nil && !errors.As(tc.err, &e) {
			t.Errorf("%s: %T is not *aidb.Error", tc.name, tc.err)
		}
	}
	// Nothing was half-applied.
	mustCount(t, c, 0)
}

func TestUseAfterCloseReturnsErrClosed(t *testing.T) {
	c, err := aidb.Open(aidb.CollectionOptions{Name: "closed", Dim: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	err = c.Upsert(aidb.NewID(), []float32{1, 2}, nil)
	if !errors.Is(err, aidb.ErrClosed) || !errors.Is(err, aidb.ErrMisuse) {
		t.Fatalf("Upsert after Close: %v", err)
	}
	if _, err := c.Search([]float32{1, 2}, nil); !errors.Is(err, aidb.ErrClosed) {
		t.Fatalf("Search after Close: %v", err)
	}
	db, err := aidb.OpenDB(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := db.Collections(); !errors.Is(err, aidb.ErrClosed) {
		t.Fatalf("DB after Close: %v", err)
	}
}

func TestWALIteratorReplaysChangeFeed(t *testing.T) {
	c := mustOpen(t, aidb.CollectionOptions{Name: "feed", Dim: 2, WALPath: filepath.Join(t.TempDir(), "wal")})
	id := aidb.NewID()
	if err := c.Upsert(id, []float32{1, 2}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(id); err != nil {
		t.Fatal(err)
	}
	it, err := c.WAL(0)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var ops []aidb.WALOp
	var last uint64
	for {
		e, ok, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if e.LSN <= last || !json.Valid(e.JSON) {
			t.Fatalf("entry %+v", e)
		}
		last = e.LSN
		ops = append(ops, e.Op)
	}
	if len(ops) != 2 || ops[0] != aidb.WALUpsert || ops[1] != aidb.WALDelete {
		t.Fatalf("ops = %v", ops)
	}
}

func TestLoggerReceivesWALTruncatedEvent(t *testing.T) {
	var mu sync.Mutex
	var events []aidb.LogEvent
	aidb.SetLogger(aidb.LogInfo, func(e aidb.LogEvent) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	})
	defer aidb.SetLogger(aidb.LogOff, nil)
	dir := t.TempDir()
	c := mustOpen(t, aidb.CollectionOptions{Name: "logged", Dim: 2, WALPath: filepath.Join(dir, "wal")})
	if err := c.Upsert(aidb.NewID(), []float32{1, 2}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.SnapshotTo(filepath.Join(dir, "snap")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, e := range events {
		if e.Target == "aidb::storage" && e.Event == "wal_truncated" {
			return
		}
	}
	t.Fatalf("no aidb::storage wal_truncated event in %+v", events)
}

func TestCloseWhileSearchingIsSafe(t *testing.T) {
	c, err := aidb.Open(aidb.CollectionOptions{Name: "race", Dim: 8})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := c.Upsert(aidb.NewID(), vec(i, 8), nil); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, err := c.Search(vec(3, 8), nil)
				if errors.Is(err, aidb.ErrClosed) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	c.Close() // waits for searches in flight; later ones get ErrClosed
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Scores are distances, lower is better, hits ascending: hand-computed for
// q = (1,1) against a = (1,0), b = (0,2), c = (3,4), d = (-2,0).
func TestScoresAreDistancesAscending(t *testing.T) {
	pts := [][]float32{{1, 0}, {0, 2}, {3, 4}, {-2, 0}}
	r2 := math.Sqrt2
	want := map[aidb.Metric][]float64{
		aidb.Cosine:    {1 - 1/r2, 1 - 1/r2, 1 - 7/(5*r2), 1 + 1/r2},
		aidb.Euclidean: {1, r2, math.Sqrt(13), math.Sqrt(10)},
		aidb.Dot:       {-1, -2, -7, 2},
	}
	for _, index := range []aidb.IndexKind{aidb.Flat, aidb.HNSW} {
		for metric, dist := range want {
			c := mustOpen(t, aidb.CollectionOptions{Name: "d", Dim: 2, Metric: metric, Index: index,
				Durability: aidb.DurabilityNone})
			ids := make([]string, len(pts))
			for i, p := range pts {
				ids[i] = aidb.NewID()
				if err := c.Upsert(ids[i], p, nil); err != nil {
					t.Fatal(err)
				}
			}
			hits, err := c.Search([]float32{1, 1}, &aidb.SearchOptions{TopK: 4})
			if err != nil || len(hits) != 4 {
				t.Fatalf("%v/%v: %d hits, %v", metric, index, len(hits), err)
			}
			for i, h := range hits {
				if i > 0 && h.Score < hits[i-1].Score {
					t.Errorf("%v/%v: hits not ascending: %v", metric, index, hits)
				}
				for j, id := range ids {
					if id == h.ID && math.Abs(float64(h.Score)-dist[j]) > 1e-5 {
						t.Errorf("%v/%v: point %d scored %v, want %v", metric, index, j, h.Score, dist[j])
					}
				}
			}
			// An exact match: the best hit, at distance 0 (cosine, Euclidean).
			self, err := c.Search(pts[2], &aidb.SearchOptions{TopK: 1})
			if err != nil || len(self) != 1 || self[0].ID != ids[2] {
				t.Fatalf("%v/%v: self search %v, %v", metric, index, self, err)
			}
			if metric != aidb.Dot && (math.Abs(float64(self[0].Score)) > 1e-6 || math.Signbit(float64(self[0].Score))) {
				t.Errorf("%v/%v: exact match scored %v, want 0", metric, index, self[0].Score)
			}
			if metric == aidb.Dot && math.Abs(float64(self[0].Score)+25) > 1e-4 {
				t.Errorf("dot/%v: exact match scored %v, want -25", index, self[0].Score)
			}
		}
	}
}
