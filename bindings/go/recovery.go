package aidb

/*
#include <aidb.h>
#include <stdlib.h>
*/
import "C"

import (
	"time"
	"unsafe"
)

// SnapshotTo writes a snapshot of the collection to path, then truncates the
// WAL to zero bytes (a checkpoint, see docs/operations.md).
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
	if err := noNUL(op, "path", path); err != nil {
		return err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return c.do(op, func(p *C.aidb_collection, msg **C.char) C.int { return f(p, cpath, msg) })
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
	if err := c.do("recover", func(p *C.aidb_collection, msg **C.char) C.int {
		return C.aidb_recover(p, &co, &st, msg)
	}); err != nil {
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
	var wi C.aidb_wal_info
	C.aidb_wal_info_init(&wi)
	if err := c.do("wal_stats", func(p *C.aidb_collection, msg **C.char) C.int {
		return C.aidb_wal_stats(p, &wi, msg)
	}); err != nil {
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
