package aidb

/*
#include <aidb.h>
#include <stdlib.h>
*/
import "C"

import (
	"runtime"
	"sync"
)

// collState is the C handle and the lock that keeps Close from racing calls.
// It holds no reference back to a Collection or DB, so the owners' finalizers
// never sit on a reference cycle.
type collState struct {
	mu  sync.RWMutex
	ptr *C.aidb_collection
}

// Collection is a handle to a collection. It is safe for concurrent use.
// Its methods are grouped by concern: points.go (upsert, delete, get),
// search.go, recovery.go (snapshots, recovery, WAL statistics) and wal.go
// (the change feed).
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

// do runs f (one C call taking the handle and the errmsg out-pointer) while
// the handle is held open, and turns its status into an error.
func (c *Collection) do(op string, f func(p *C.aidb_collection, msg **C.char) C.int) error {
	p, err := c.s.acquire(op)
	if err != nil {
		return err
	}
	defer c.s.mu.RUnlock()
	var msg *C.char
	return check(op, f(p, &msg), msg)
}

func newCollection(ptr *C.aidb_collection, db *DB) *Collection {
	c := &Collection{s: &collState{ptr: ptr}, db: db}
	runtime.SetFinalizer(c, (*Collection).Close)
	return c
}

// Open opens a standalone collection. If opts.WALPath names an existing WAL,
// its records are not applied until LoadSnapshot and/or Recover are called
// (the restore workflow of docs/operations.md).
func Open(opts CollectionOptions) (*Collection, error) {
	if err := noNUL("open", "name or WAL path", opts.Name, opts.WALPath); err != nil {
		return nil, err
	}
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
	Quantization   Quantization
	VectorsOnDisk  bool
	// The configured IVF parameters (0 = automatic; 0 for other kinds).
	IVFNList  uint32
	IVFNProbe uint32
	IVFRerank uint32
}

// Info returns the collection's configuration and size.
func (c *Collection) Info() (CollectionInfo, error) {
	var info C.aidb_collection_info
	C.aidb_collection_info_init(&info)
	if err := c.do("info", func(p *C.aidb_collection, msg **C.char) C.int {
		return C.aidb_collection_get_info(p, &info, msg)
	}); err != nil {
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
		Quantization:   Quantization(info.quantization),
		VectorsOnDisk:  info.vectors_on_disk != 0,
		IVFNList:       uint32(info.ivf_nlist),
		IVFNProbe:      uint32(info.ivf_nprobe),
		IVFRerank:      uint32(info.ivf_rerank),
	}, nil
}

// Count returns the number of live points.
func (c *Collection) Count() (uint64, error) {
	var n C.uint64_t
	err := c.do("count", func(p *C.aidb_collection, msg **C.char) C.int {
		return C.aidb_collection_count(p, &n, msg)
	})
	return uint64(n), err
}

// SetEfSearch changes the default ef_search of an HNSW collection, or the
// partitions an IVF collection probes by default.
func (c *Collection) SetEfSearch(ef uint32) error {
	return c.do("set_ef_search", func(p *C.aidb_collection, msg **C.char) C.int {
		return C.aidb_collection_set_ef_search(p, C.uint32_t(ef), msg)
	})
}

// Compact drops deleted points' traces from the index (HNSW tombstones).
func (c *Collection) Compact() error {
	return c.do("compact", func(p *C.aidb_collection, msg **C.char) C.int {
		return C.aidb_collection_compact(p, msg)
	})
}
