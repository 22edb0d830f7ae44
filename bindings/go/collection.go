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
	"sync"
	"time"
	"unsafe"
)

// CollectionOptions configures a collection. Zero values mean the library's
// defaults (cosine, flat, m=16, ef_construction=200, fsync durability, ...).
type CollectionOptions struct {
	Name           string        // [A-Za-z0-9_-]{1,64}; required
	Dim            int           // 1..65536; required
	Metric         Metric        // default Cosine
	Index          IndexKind     // default Flat
	M              uint32        // HNSW links per node; 0 = default (16)
	EfConstruction uint32        // HNSW; 0 = default (200)
	EfSearch       uint32        // HNSW default breadth; 0 = adapt to k
	Durability     Durability    // default DurabilityFsync
	BatchInterval  time.Duration // DurabilityBatch sync interval; 0 = default (10ms)
	// WALPath is the write-ahead log of a standalone collection (see Open);
	// empty means in memory only. Ignored by DB.CreateCollection.
	WALPath string
	// WALMmapThreshold: WAL files at least this big are replayed through
	// mmap; 0 = default (1 MiB).
	WALMmapThreshold uint64
}

// collState is the C handle and the lock that keeps Close from racing calls.
// It holds no reference back to a Collection or DB, so the owners' finalizers
// never sit on a reference cycle.
type collState struct {
	mu  sync.RWMutex
	ptr *C.aidb_collection
}

// Collection is a handle to a collection. It is safe for concurrent use.
type Collection struct {
	s  *collState
	db *DB // owning database, kept alive by this handle; nil if standalone
}

func (s *collState) acquire(op string) (*C.aidb_collection, error) {
	s.mu.RLock()
	if s.ptr == nil {
		s.mu.RUnlock()
		return nil, errClosed(op)
	}
	return s.ptr, nil
}

func (s *collState) close() {
	s.mu.Lock()
	if s.ptr != nil {
		C.aidb_collection_close(s.ptr)
		s.ptr = nil
	}
	s.mu.Unlock()
}

// fillOptions converts o into a C options struct. The returned func frees
// the C strings it allocated.
func fillOptions(o *CollectionOptions, c *C.aidb_collection_options) func() {
	C.aidb_collection_options_init(c)
	var toFree []unsafe.Pointer
	cstr := func(s string) *C.char {
		p := C.CString(s)
		toFree = append(toFree, unsafe.Pointer(p))
		return p
	}
	c.name = cstr(o.Name)
	c.dim = C.uint32_t(o.Dim)
	if o.Dim < 0 || o.Dim > 1<<31 {
		c.dim = 0 // rejected by the library
	}
	c.metric = C.int(o.Metric)
	c.index_kind = C.int(o.Index)
	if o.M != 0 {
		c.hnsw_m = C.uint32_t(o.M)
	}
	if o.EfConstruction != 0 {
		c.hnsw_ef_construction = C.uint32_t(o.EfConstruction)
	}
	c.hnsw_ef_search = C.uint32_t(o.EfSearch)
	c.durability = C.int(o.Durability)
	if o.BatchInterval > 0 {
		c.batch_interval_ms = C.uint32_t(o.BatchInterval / time.Millisecond)
	}
	if o.WALPath != "" {
		c.wal_path = cstr(o.WALPath)
	}
	if o.WALMmapThreshold != 0 {
		c.wal_mmap_threshold = C.uint64_t(o.WALMmapThreshold)
	}
	return func() {
		for _, p := range toFree {
			C.free(p)
		}
	}
}

func newCollection(ptr *C.aidb_collection, db *DB) *Collection {
	c := &Collection{s: &collState{ptr: ptr}, db: db}
	runtime.SetFinalizer(c, (*Collection).Close)
	return c
}

// Open opens a standalone collection. If opts.WALPath names an existing WAL,
// its records are not applied until LoadSnapshot and/or Recover are called
// (the runbook's restore workflow).
func Open(opts CollectionOptions) (*Collection, error) {
	var copts C.aidb_collection_options
	free := fillOptions(&opts, &copts)
	defer free()
	var ptr *C.aidb_collection
	var msg *C.char
	if err := check("open", C.aidb_collection_open(&copts, &ptr, &msg), msg); err != nil {
		return nil, err
	}
	return newCollection(ptr, nil), nil
}

// Close releases the handle (flushing the WAL in batch/none modes). It is
// idempotent; later calls on the collection return ErrClosed.
func (c *Collection) Close() error {
	c.s.close()
	runtime.SetFinalizer(c, nil)
	if c.db != nil {
		c.db.forget(c.s)
	}
	return nil
}

// CollectionInfo describes a collection.
type CollectionInfo struct {
	Name           string
	Dim            int
	Metric         Metric
	Index          IndexKind
	M              uint32
	EfConstruction uint32
	EfSearch       uint32
	Durability     Durability
	Count          uint64
}

// Info returns the collection's configuration and size.
func (c *Collection) Info() (CollectionInfo, error) {
	p, err := c.s.acquire("info")
	if err != nil {
		return CollectionInfo{}, err
	}
	defer c.s.mu.RUnlock()
	var info C.aidb_collection_info
	C.aidb_collection_info_init(&info)
	var msg *C.char
	if err := check("info", C.aidb_collection_get_info(p, &info, &msg), msg); err != nil {
		return CollectionInfo{}, err
	}
	return CollectionInfo{
		Name:           C.GoString(&info.name[0]),
		Dim:            int(info.dim),
		Metric:         Metric(info.metric),
		Index:          IndexKind(info.index_kind),
		M:              uint32(info.hnsw_m),
		EfConstruction: uint32(info.hnsw_ef_construction),
		EfSearch:       uint32(info.hnsw_ef_search),
		Durability:     Durability(info.durability),
		Count:          uint64(info.count),
	}, nil
}

// Count returns the number of live points.
func (c *Collection) Count() (uint64, error) {
	p, err := c.s.acquire("count")
	if err != nil {
		return 0, err
	}
	defer c.s.mu.RUnlock()
	var n C.uint64_t
	var msg *C.char
	if err := check("count", C.aidb_collection_count(p, &n, &msg), msg); err != nil {
		return 0, err
	}
	return uint64(n), nil
}

// SetEfSearch changes the default ef_search of an HNSW collection.
func (c *Collection) SetEfSearch(ef uint32) error {
	p, err := c.s.acquire("set_ef_search")
	if err != nil {
		return err
	}
	defer c.s.mu.RUnlock()
	var msg *C.char
	return check("set_ef_search", C.aidb_collection_set_ef_search(p, C.uint32_t(ef), &msg), msg)
}

// Upsert inserts or replaces one point. payload is nil, JSON bytes/string,
// or a value encoding/json turns into an object. The vector is not copied.
func (c *Collection) Upsert(id string, vector []float32, payload any) error {
	pl, err := payloadBytes("upsert", payload)
	if err != nil {
		return err
	}
	p, err := c.s.acquire("upsert")
	if err != nil {
		return err
	}
	defer c.s.mu.RUnlock()
	cid := C.CString(id)
	defer C.free(unsafe.Pointer(cid))
	var cpl *C.char
	if pl != nil {
		if len(pl) == 0 {
			return invalid("upsert", "empty payload")
		}
		cpl = (*C.char)(unsafe.Pointer(&pl[0]))
	}
	var msg *C.char
	rc := C.aidb_collection_upsert(p, cid, floatPtr(vector), C.size_t(len(vector)),
		cpl, C.size_t(len(pl)), &msg)
	runtime.KeepAlive(vector)
	runtime.KeepAlive(pl)
	return check("upsert", rc, msg)
}

// Point is one point for UpsertBatch.
type Point struct {
	ID      string
	Vector  []float32
	Payload any // as for Upsert
}

// UpsertBatch inserts or replaces points atomically (all or nothing). The
// vectors are gathered into one row-major buffer; use UpsertBatchFlat to
// pass a buffer you already have without a copy.
func (c *Collection) UpsertBatch(points []Point) error {
	if len(points) == 0 {
		return nil
	}
	dim := len(points[0].Vector)
	flat := make([]float32, 0, dim*len(points))
	ids := make([]string, len(points))
	payloads := make([][]byte, len(points))
	for i, pt := range points {
		if len(pt.Vector) != dim {
			return &Error{Code: CodeDimensionMismatch, Op: "upsert_batch",
				Message: "points have vectors of different lengths"}
		}
		flat = append(flat, pt.Vector...)
		ids[i] = pt.ID
		pl, err := payloadBytes("upsert_batch", pt.Payload)
		if err != nil {
			return err
		}
		payloads[i] = pl
	}
	return c.UpsertBatchFlat(ids, flat, payloads)
}

// UpsertBatchFlat inserts or replaces len(ids) points atomically. vectors
// holds len(ids)*dim floats, row-major, and is passed without a copy.
// payloads is nil or holds one JSON object (or nil) per point.
func (c *Collection) UpsertBatchFlat(ids []string, vectors []float32, payloads [][]byte) error {
	const op = "upsert_batch"
	n := len(ids)
	if n == 0 {
		return nil
	}
	if len(vectors)%n != 0 {
		return &Error{Code: CodeDimensionMismatch, Op: op,
			Message: "len(vectors) is not a multiple of len(ids)"}
	}
	if payloads != nil && len(payloads) != n {
		return invalid(op, "len(payloads) != len(ids)")
	}
	p, err := c.s.acquire(op)
	if err != nil {
		return err
	}
	defer c.s.mu.RUnlock()
	// ids and payloads must be NUL-terminated C strings in C memory (cgo
	// forbids passing Go memory that holds Go pointers).
	ptrSize := C.size_t(unsafe.Sizeof((*C.char)(nil)))
	cids := (*[1 << 30]*C.char)(C.malloc(ptrSize * C.size_t(n)))[:n:n]
	defer C.free(unsafe.Pointer(&cids[0]))
	for i, id := range ids {
		cids[i] = C.CString(id)
	}
	defer func() {
		for _, s := range cids {
			C.free(unsafe.Pointer(s))
		}
	}()
	var cpl **C.char
	if payloads != nil {
		arr := (*[1 << 30]*C.char)(C.malloc(ptrSize * C.size_t(n)))[:n:n]
		defer C.free(unsafe.Pointer(&arr[0]))
		for i, pl := range payloads {
			arr[i] = nil
			if pl != nil {
				arr[i] = (*C.char)(C.CBytes(append(pl[:len(pl):len(pl)], 0)))
			}
		}
		defer func() {
			for _, s := range arr {
				C.free(unsafe.Pointer(s))
			}
		}()
		cpl = &arr[0]
	}
	var msg *C.char
	rc := C.aidb_collection_upsert_batch(p, C.size_t(n), &cids[0], floatPtr(vectors),
		C.size_t(len(vectors)/n), cpl, &msg)
	runtime.KeepAlive(vectors)
	return check(op, rc, msg)
}

// Delete removes a point; ErrNotFound if there is none.
func (c *Collection) Delete(id string) error {
	p, err := c.s.acquire("delete")
	if err != nil {
		return err
	}
	defer c.s.mu.RUnlock()
	cid := C.CString(id)
	defer C.free(unsafe.Pointer(cid))
	var msg *C.char
	return check("delete", C.aidb_collection_delete(p, cid, &msg), msg)
}

// Get reads a point: its stored vector (normalised for cosine collections)
// and its payload (nil if none). ErrNotFound if there is no such point.
func (c *Collection) Get(id string) ([]float32, json.RawMessage, error) {
	info, err := c.Info()
	if err != nil {
		return nil, nil, err
	}
	vec := make([]float32, info.Dim)
	payload, err := c.GetInto(id, vec)
	if err != nil {
		return nil, nil, err
	}
	return vec, payload, nil
}

// GetInto reads a point's vector into vec (len(vec) must be the collection's
// dimension) and returns its payload.
func (c *Collection) GetInto(id string, vec []float32) (json.RawMessage, error) {
	p, err := c.s.acquire("get")
	if err != nil {
		return nil, err
	}
	defer c.s.mu.RUnlock()
	cid := C.CString(id)
	defer C.free(unsafe.Pointer(cid))
	var pl, msg *C.char
	rc := C.aidb_collection_get(p, cid, floatPtr(vec), C.size_t(len(vec)), &pl, &msg)
	runtime.KeepAlive(vec)
	if err := check("get", rc, msg); err != nil {
		return nil, err
	}
	if pl == nil {
		return nil, nil
	}
	defer C.aidb_free(unsafe.Pointer(pl))
	return json.RawMessage(C.GoString(pl)), nil
}

// SearchOptions tunes a search. The zero value asks for the 10 best hits
// with payloads.
type SearchOptions struct {
	TopK     int    // hits per query; 0 = 10
	EfSearch uint32 // HNSW breadth; 0 = the collection's default
	// Filter is nil, JSON bytes/string, or a value encoding/json turns into
	// a filter object (see aidb.h for the short and full forms).
	Filter         any
	WithoutPayload bool   // leave payloads out of the hits
	Threads        uint32 // SearchBatch worker threads; 0 = all cores
	Exact          bool   // exact scan even on HNSW collections
}

// Hit is one search result.
type Hit struct {
	ID      string
	Score   float32 // higher is better
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

// prepareSearch fills a C options struct; the returned func frees the filter.
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
	if o.Exact {
		c.exact = 1
	}
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

// Search returns the best hits for one query vector (not copied).
func (c *Collection) Search(query []float32, opts *SearchOptions) ([]Hit, error) {
	const op = "search"
	var copts C.aidb_search_options
	free, err := prepareSearch(op, opts, &copts)
	if err != nil {
		return nil, err
	}
	defer free()
	p, err := c.s.acquire(op)
	if err != nil {
		return nil, err
	}
	defer c.s.mu.RUnlock()
	var res *C.aidb_search_result
	var msg *C.char
	rc := C.aidb_collection_search(p, floatPtr(query), C.size_t(len(query)), &copts, &res, &msg)
	runtime.KeepAlive(query)
	if err := check(op, rc, msg); err != nil {
		return nil, err
	}
	defer C.aidb_search_result_free(res)
	return hitsOf(res, 0), nil
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
	var copts C.aidb_search_options
	free, err := prepareSearch(op, opts, &copts)
	if err != nil {
		return nil, err
	}
	defer free()
	p, err := c.s.acquire(op)
	if err != nil {
		return nil, err
	}
	defer c.s.mu.RUnlock()
	var res *C.aidb_search_result
	var msg *C.char
	rc := C.aidb_collection_search_batch(p, floatPtr(queries), C.size_t(nq),
		C.size_t(len(queries)/nq), &copts, &res, &msg)
	runtime.KeepAlive(queries)
	if err := check(op, rc, msg); err != nil {
		return nil, err
	}
	defer C.aidb_search_result_free(res)
	out := make([][]Hit, int(C.aidb_search_result_query_count(res)))
	for q := range out {
		out[q] = hitsOf(res, q)
	}
	return out, nil
}

// SnapshotTo writes a snapshot of the collection to path, then truncates the
// WAL to zero bytes (the runbook's checkpoint).
func (c *Collection) SnapshotTo(path string) error {
	return c.pathOp("snapshot_to", path, func(p *C.aidb_collection, cp *C.char, msg **C.char) C.int {
		return C.aidb_collection_snapshot_to(p, cp, msg)
	})
}

// LoadSnapshot replaces the in-memory state with the snapshot at path. The
// WAL is left intact: call Recover to apply newer records.
func (c *Collection) LoadSnapshot(path string) error {
	return c.pathOp("load_snapshot", path, func(p *C.aidb_collection, cp *C.char, msg **C.char) C.int {
		return C.aidb_collection_load_snapshot(p, cp, msg)
	})
}

func (c *Collection) pathOp(op, path string, f func(*C.aidb_collection, *C.char, **C.char) C.int) error {
	p, err := c.s.acquire(op)
	if err != nil {
		return err
	}
	defer c.s.mu.RUnlock()
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var msg *C.char
	return check(op, f(p, cpath, &msg), msg)
}

// RecoverTarget selects how far Recover replays.
type RecoverTarget int

// Recovery targets.
const (
	RecoverLatest RecoverTarget = C.AIDB_RECOVER_LATEST
	RecoverToLSN  RecoverTarget = C.AIDB_RECOVER_TO_LSN
	RecoverToTime RecoverTarget = C.AIDB_RECOVER_TO_TIME
)

// RecoverOptions selects the recovery target; nil means latest.
type RecoverOptions struct {
	Target RecoverTarget
	LSN    uint64    // RecoverToLSN: apply records with LSN <= this
	Time   time.Time // RecoverToTime: apply records written at or before
}

// RecoverStats reports what Recover did.
type RecoverStats struct {
	RecordsApplied uint64
	RecordsSkipped uint64
	BytesRead      uint64
	TornTailBytes  uint64
	LastLSN        uint64
	TornTail       bool
	UsedMmap       bool
}

// Recover replays the WAL records newer than the in-memory state.
func (c *Collection) Recover(opts *RecoverOptions) (RecoverStats, error) {
	const op = "recover"
	p, err := c.s.acquire(op)
	if err != nil {
		return RecoverStats{}, err
	}
	defer c.s.mu.RUnlock()
	var co C.aidb_recover_options
	C.aidb_recover_options_init(&co)
	if opts != nil {
		co.target = C.int(opts.Target)
		co.lsn = C.uint64_t(opts.LSN)
		if !opts.Time.IsZero() {
			co.timestamp_ns = C.int64_t(opts.Time.UnixNano())
		}
	}
	var st C.aidb_recover_stats
	C.aidb_recover_stats_init(&st)
	var msg *C.char
	if err := check(op, C.aidb_recover(p, &co, &st, &msg), msg); err != nil {
		return RecoverStats{}, err
	}
	return RecoverStats{
		RecordsApplied: uint64(st.records_applied),
		RecordsSkipped: uint64(st.records_skipped),
		BytesRead:      uint64(st.bytes_read),
		TornTailBytes:  uint64(st.torn_tail_bytes),
		LastLSN:        uint64(st.last_lsn),
		TornTail:       st.torn_tail != 0,
		UsedMmap:       st.used_mmap != 0,
	}, nil
}

// WALStats describes a collection's write-ahead log.
type WALStats struct {
	SizeBytes          uint64
	LastTruncate       *time.Time // nil until a snapshot truncated the WAL in this process
	BytesSinceTruncate uint64
	LastLSN            uint64
}

// WALStats returns the collection's WAL statistics.
func (c *Collection) WALStats() (WALStats, error) {
	const op = "wal_stats"
	p, err := c.s.acquire(op)
	if err != nil {
		return WALStats{}, err
	}
	defer c.s.mu.RUnlock()
	var wi C.aidb_wal_info
	C.aidb_wal_info_init(&wi)
	var msg *C.char
	if err := check(op, C.aidb_wal_stats(p, &wi, &msg), msg); err != nil {
		return WALStats{}, err
	}
	s := WALStats{
		SizeBytes:          uint64(wi.size_bytes),
		BytesSinceTruncate: uint64(wi.bytes_since_truncate),
		LastLSN:            uint64(wi.last_lsn),
	}
	if wi.has_last_truncate != 0 {
		t := time.Unix(0, int64(wi.last_truncate_unix_ns))
		s.LastTruncate = &t
	}
	return s, nil
}

// Compact drops deleted points' traces from the index (HNSW tombstones).
func (c *Collection) Compact() error {
	p, err := c.s.acquire("compact")
	if err != nil {
		return err
	}
	defer c.s.mu.RUnlock()
	var msg *C.char
	return check("compact", C.aidb_collection_compact(p, &msg), msg)
}
