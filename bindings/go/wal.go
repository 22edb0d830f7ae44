package aidb

/*
#include <aidb.h>
#include <stdlib.h>
*/
import "C"

import (
	"encoding/json"
	"runtime"
	"sync"
	"time"
)

// WALOp is the operation of a WAL record.
type WALOp int

// WAL operations.
const (
	WALUpsert    WALOp = C.AIDB_WAL_OP_UPSERT
	WALDelete    WALOp = C.AIDB_WAL_OP_DELETE
	WALSetParams WALOp = C.AIDB_WAL_OP_SET_PARAMS
)

// WALEntry is one record of the change feed.
type WALEntry struct {
	LSN  uint64
	Time time.Time
	Op   WALOp
	JSON json.RawMessage // the record as a JSON object
}

// WALIterator walks the WAL records of a collection as of its creation.
type WALIterator struct {
	mu   sync.Mutex
	ptr  *C.aidb_wal_iterator
	coll *Collection // keeps the collection alive while iterating
}

// WAL returns an iterator over the collection's WAL records with LSN >= fromLSN.
func (c *Collection) WAL(fromLSN uint64) (*WALIterator, error) {
	var it *C.aidb_wal_iterator
	if err := c.do("wal_iterator", func(p *C.aidb_collection, msg **C.char) C.int {
		return C.aidb_wal_iterator_open(p, C.uint64_t(fromLSN), &it, msg)
	}); err != nil {
		return nil, err
	}
	w := &WALIterator{ptr: it, coll: c}
	runtime.SetFinalizer(w, (*WALIterator).Close)
	return w, nil
}

// Next returns the next record, or ok == false at the end.
func (w *WALIterator) Next() (entry WALEntry, ok bool, err error) {
	const op = "wal_next"
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ptr == nil {
		return WALEntry{}, false, errClosed(op)
	}
	var e C.aidb_wal_entry
	e.struct_size = C.size_t(C.sizeof_aidb_wal_entry)
	var has C.int
	var msg *C.char
	if err := check(op, C.aidb_wal_iterator_next(w.ptr, &e, &has, &msg), msg); err != nil {
		return WALEntry{}, false, err
	}
	if has == 0 {
		return WALEntry{}, false, nil
	}
	return WALEntry{
		LSN:  uint64(e.lsn),
		Time: time.Unix(0, int64(e.timestamp_ns)),
		Op:   WALOp(e.op),
		JSON: json.RawMessage(C.GoStringN(e.json, C.int(e.json_len))),
	}, true, nil
}

// Close releases the iterator. Idempotent.
func (w *WALIterator) Close() error {
	w.mu.Lock()
	if w.ptr != nil {
		C.aidb_wal_iterator_close(w.ptr)
		w.ptr = nil
	}
	w.mu.Unlock()
	runtime.SetFinalizer(w, nil)
	return nil
}
