package aidb_test

import (
	"errors"
	"fmt"
	"math"
	"testing"

	aidb "aidb/bindings/go"
)

// Every status code the library names has a sentinel here that errors.Is
// matches (a code added to aidb.h fails this test until it has one).
func TestEveryLibraryStatusHasASentinel(t *testing.T) {
	sentinels := map[aidb.Code]error{
		aidb.CodeInvalidArgument:   aidb.ErrInvalidArgument,
		aidb.CodeNotFound:          aidb.ErrNotFound,
		aidb.CodeAlreadyExists:     aidb.ErrAlreadyExists,
		aidb.CodeDimensionMismatch: aidb.ErrDimensionMismatch,
		aidb.CodeIOError:           aidb.ErrIO,
		aidb.CodeCorruption:        aidb.ErrCorruption,
		aidb.CodeMisuse:            aidb.ErrMisuse,
		aidb.CodeNoMemory:          aidb.ErrNoMemory,
		aidb.CodeUnsupported:       aidb.ErrUnsupported,
		aidb.CodeInternal:          aidb.ErrInternal,
		aidb.CodeBusy:              aidb.ErrBusy,
	}
	n := 0
	for c := aidb.Code(1); c.String() != "UNKNOWN" && c < 1000; c++ {
		n++
		s, ok := sentinels[c]
		if !ok {
			t.Errorf("status %d (%s) has no sentinel", int(c), c)
			continue
		}
		if err := error(&aidb.Error{Code: c, Op: "op"}); !errors.Is(err, s) {
			t.Errorf("errors.Is(%v, %v) = false", err, s)
		}
	}
	if n != len(sentinels) {
		t.Errorf("the library names %d codes, the package %d", n, len(sentinels))
	}
	if aidb.CodeBusy != 11 || aidb.CodeBusy.String() != "BUSY" {
		t.Errorf("CodeBusy = %d %q, want 11 BUSY", int(aidb.CodeBusy), aidb.CodeBusy)
	}
}

// busyCollection is an HNSW collection of a cluster of points near the
// origin and one far away (far): searching the cluster finds ids, and after
// deleteCluster the graph is mostly deleted points.
func busyCollection(t *testing.T) (c *aidb.Collection, cluster []string, far string) {
	const dim, n = 8, 500
	c = mustOpen(t, aidb.CollectionOptions{Name: "busy", Dim: dim, Metric: aidb.Euclidean, Index: aidb.HNSW})
	points := make([]aidb.Point, 0, n+1)
	for i := 0; i < n; i++ {
		v := make([]float32, dim)
		for j := range v {
			v[j] = float32(math.Sin(float64(i*dim + j + 1)))
		}
		points = append(points, aidb.Point{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Vector: v})
		cluster = append(cluster, points[i].ID)
	}
	far = aidb.NewID()
	farVec := make([]float32, dim)
	for j := range farVec {
		farVec[j] = 100
	}
	points = append(points, aidb.Point{ID: far, Vector: farVec})
	if err := c.UpsertBatch(points); err != nil {
		t.Fatal(err)
	}
	return c, cluster, far
}

// Nonblocking reaches the library: on an idle collection it answers exactly
// like a blocking search, and it says ErrBusy where the library must refuse
// (an HNSW walk through a graph of deleted points needs far more distance
// computations than ef predicts), where a blocking search answers.
func TestNonblockingSearchAnswersOrSaysBusy(t *testing.T) {
	c, cluster, far := busyCollection(t)
	for q := 0; q < 20; q++ {
		query, _, err := c.Get(cluster[q*17])
		if err != nil {
			t.Fatal(err)
		}
		want, err := c.Search(query, &aidb.SearchOptions{TopK: 5})
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Search(query, &aidb.SearchOptions{TopK: 5, Nonblocking: true})
		if err != nil {
			t.Fatalf("nonblocking search on an idle collection: %v", err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("nonblocking %v != blocking %v", got, want)
		}
		batch, err := c.SearchBatch(query, 1, &aidb.SearchOptions{TopK: 5, Nonblocking: true})
		if err != nil || fmt.Sprint(batch[0]) != fmt.Sprint(want) {
			t.Fatalf("nonblocking batch %v, %v != %v", batch, err, want)
		}
	}

	query, _, err := c.Get(cluster[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range cluster {
		if err := c.Delete(id); err != nil {
			t.Fatal(err)
		}
	}
	opts := aidb.SearchOptions{TopK: 1, EfSearch: 1, Nonblocking: true}
	_, err = c.Search(query, &opts)
	if !errors.Is(err, aidb.ErrBusy) {
		t.Fatalf("nonblocking search through deleted points: err = %v, want ErrBusy", err)
	}
	var e *aidb.Error
	if !errors.As(err, &e) || e.Code != aidb.CodeBusy || e.Message == "" {
		t.Fatalf("err = %#v", err)
	}
	if _, err := c.SearchBatch(query, 1, &opts); !errors.Is(err, aidb.ErrBusy) {
		t.Fatalf("nonblocking batch search: err = %v, want ErrBusy", err)
	}
	opts.Nonblocking = false
	hits, err := c.Search(query, &opts)
	if err != nil || len(hits) != 1 || hits[0].ID != far {
		t.Fatalf("blocking search = %v, %v; want the one live point %s", hits, err, far)
	}
}
