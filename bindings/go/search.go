package aidb

/*
#include <aidb.h>
#include <stdlib.h>
*/
import "C"

import (
	"bytes"
	"encoding/json"
	"runtime"
	"unsafe"
)

// SearchOptions tunes a search. The zero value asks for the library's
// default number of hits (aidb_search_options_init), with payloads.
type SearchOptions struct {
	TopK     int    // hits per query; 0 = the library's default
	EfSearch uint32 // HNSW breadth, IVF partitions to scan; 0 = the collection's default
	// Filter is nil, JSON bytes/string, or a value encoding/json turns into
	// a filter object (see aidb.h for the short and full forms).
	Filter         any
	WithoutPayload bool   // leave payloads out of the hits
	Threads        uint32 // SearchBatch worker threads; 0 = all cores
	Exact          bool   // exact scan even on HNSW collections
	// Nonblocking never waits for a lock: the search fails with ErrBusy
	// (retry, or search again without Nonblocking) when a writer holds or
	// waits for the collection, or when an HNSW walk would take far longer
	// than ef predicts (see aidb_search_options.nonblocking in aidb.h).
	Nonblocking bool
	// IVFRerank: IVF candidates re-ranked exactly for this query; 0 = the
	// collection's default.
	IVFRerank uint32
}

// Hit is one search result.
type Hit struct {
	ID string
	// Score is a distance, lower is better (hits come in ascending order):
	// 1 - cosine similarity (0 for an exact match), the L2 distance, or the
	// negated dot product. (Before 0.2.0 higher was better.)
	Score   float32
	Payload json.RawMessage
}

// PayloadMap decodes the hit's payload into a map (nil if it has none).
func (h Hit) PayloadMap() (map[string]any, error) {
	if h.Payload == nil {
		return nil, nil
	}
	var m map[string]any
	err := json.Unmarshal(h.Payload, &m)
	return m, err
}

// cBool is a C truth value.
func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// prepareSearch fills a C options struct, starting from the library's
// defaults; the returned func frees the filter.
func prepareSearch(op string, o *SearchOptions, c *C.aidb_search_options) (func(), error) {
	C.aidb_search_options_init(c)
	if o == nil {
		return func() {}, nil
	}
	if o.TopK < 0 {
		return nil, invalid(op, "negative TopK")
	}
	if o.TopK > 0 {
		c.top_k = C.uint32_t(o.TopK)
	}
	c.ef_search = C.uint32_t(o.EfSearch)
	if o.WithoutPayload {
		c.with_payload = 0
	}
	c.threads = C.uint32_t(o.Threads)
	c.exact = cBool(o.Exact)
	c.nonblocking = cBool(o.Nonblocking)
	c.ivf_rerank = C.uint32_t(o.IVFRerank)
	if o.Filter != nil {
		f, err := payloadBytes(op, o.Filter)
		if err != nil {
			return nil, err
		}
		cf := C.CString(string(f))
		c.filter = cf
		return func() { C.free(unsafe.Pointer(cf)) }, nil
	}
	return func() {}, nil
}

// hitsOf converts query q of a C result into Go hits. All ids share one
// allocation, and so do all payloads (each hit's Payload is a capped slice).
func hitsOf(r *C.aidb_search_result, q int) []Hit {
	var hp *C.aidb_hit
	var n C.size_t
	if C.aidb_search_result_hits(r, C.size_t(q), &hp, &n) != C.AIDB_OK || n == 0 {
		return []Hit{}
	}
	chits := unsafe.Slice(hp, int(n))
	idLen := make([]int, len(chits))
	idTotal, plTotal := 0, 0
	for i := range chits {
		raw := unsafe.Slice((*byte)(unsafe.Pointer(&chits[i].id[0])), len(chits[i].id))
		l := bytes.IndexByte(raw, 0)
		if l < 0 {
			l = len(raw)
		}
		idLen[i] = l
		idTotal += l
		if chits[i].payload != nil {
			plTotal += int(chits[i].payload_len)
		}
	}
	idBuf := make([]byte, 0, idTotal)
	plBuf := make([]byte, 0, plTotal)
	hits := make([]Hit, len(chits))
	for i := range chits {
		h := &chits[i]
		idBuf = append(idBuf, unsafe.Slice((*byte)(unsafe.Pointer(&h.id[0])), idLen[i])...)
		hits[i].Score = float32(h.score)
		if h.payload != nil {
			start := len(plBuf)
			plBuf = append(plBuf, unsafe.Slice((*byte)(unsafe.Pointer(h.payload)), int(h.payload_len))...)
			hits[i].Payload = plBuf[start:len(plBuf):len(plBuf)]
		}
	}
	// idBuf is never written again, so the ids can view it without a copy.
	ids := unsafe.String(unsafe.SliceData(idBuf), len(idBuf))
	off := 0
	for i := range hits {
		hits[i].ID = ids[off : off+idLen[i]]
		off += idLen[i]
	}
	return hits
}

// search prepares the options, runs f (one C search call) and hands its
// result to collect, then frees the result.
func (c *Collection) search(op string, opts *SearchOptions,
	f func(p *C.aidb_collection, o *C.aidb_search_options, res **C.aidb_search_result, msg **C.char) C.int,
	collect func(res *C.aidb_search_result)) error {
	var copts C.aidb_search_options
	free, err := prepareSearch(op, opts, &copts)
	if err != nil {
		return err
	}
	defer free()
	var res *C.aidb_search_result
	if err := c.do(op, func(p *C.aidb_collection, msg **C.char) C.int {
		return f(p, &copts, &res, msg)
	}); err != nil {
		return err
	}
	defer C.aidb_search_result_free(res)
	collect(res)
	return nil
}

// Search returns the best hits for one query vector (not copied).
func (c *Collection) Search(query []float32, opts *SearchOptions) ([]Hit, error) {
	var hits []Hit
	err := c.search("search", opts,
		func(p *C.aidb_collection, o *C.aidb_search_options, res **C.aidb_search_result, msg **C.char) C.int {
			return C.aidb_collection_search(p, floatPtr(query), C.size_t(len(query)), o, res, msg)
		},
		func(res *C.aidb_search_result) { hits = hitsOf(res, 0) })
	runtime.KeepAlive(query)
	return hits, err
}

// SearchBatch searches nq queries at once; queries holds nq*dim floats,
// row-major, and is passed without a copy. It returns one hit list per query.
func (c *Collection) SearchBatch(queries []float32, nq int, opts *SearchOptions) ([][]Hit, error) {
	const op = "search_batch"
	if nq <= 0 {
		return [][]Hit{}, nil
	}
	if len(queries)%nq != 0 {
		return nil, &Error{Code: CodeDimensionMismatch, Op: op,
			Message: "len(queries) is not a multiple of nq"}
	}
	var out [][]Hit
	err := c.search(op, opts,
		func(p *C.aidb_collection, o *C.aidb_search_options, res **C.aidb_search_result, msg **C.char) C.int {
			return C.aidb_collection_search_batch(p, floatPtr(queries), C.size_t(nq),
				C.size_t(len(queries)/nq), o, res, msg)
		},
		func(res *C.aidb_search_result) {
			out = make([][]Hit, int(C.aidb_search_result_query_count(res)))
			for q := range out {
				out[q] = hitsOf(res, q)
			}
		})
	runtime.KeepAlive(queries)
	return out, err
}
