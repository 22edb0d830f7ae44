package aidb

/*
#include <aidb.h>
#include <stdlib.h>
*/
import "C"

import (
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// DBOptions configures a database directory; nil or zero values mean the
// library's defaults (aidb_db_options_init, see aidb.h).
type DBOptions struct {
	// ErrorIfMissing fails Open when the directory does not exist (the
	// default creates it).
	ErrorIfMissing   bool
	Durability       Durability
	BatchInterval    time.Duration
	WALMmapThreshold uint64
}

// dbState is the C handle, the lock that keeps Close from racing calls, and
// the open collection handles, which are closed before the database.
type dbState struct {
	mu    sync.RWMutex
	ptr   *C.aidb_db
	colls map[*collState]struct{}
}

// DB is a database directory holding one folder per collection. Opening it
// brings every collection back (latest snapshot, then WAL replay). Safe for
// concurrent use.
type DB struct {
	s *dbState
}

// OpenDB opens (and recovers) the database directory dir.
func OpenDB(dir string, opts *DBOptions) (*DB, error) {
	var co C.aidb_db_options
	C.aidb_db_options_init(&co)
	if opts != nil {
		if opts.ErrorIfMissing {
			co.create_if_missing = 0
		}
		co.durability = C.int(opts.Durability)
		if opts.BatchInterval > 0 {
			co.batch_interval_ms = C.uint32_t(opts.BatchInterval / time.Millisecond)
		}
		if opts.WALMmapThreshold != 0 {
			co.wal_mmap_threshold = C.uint64_t(opts.WALMmapThreshold)
		}
	}
	if err := noNUL("open_db", "directory", dir); err != nil {
		return nil, err
	}
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	var ptr *C.aidb_db
	var msg *C.char
	if err := check("open_db", C.aidb_db_open(cdir, &co, &ptr, &msg), msg); err != nil {
		return nil, err
	}
	db := &DB{s: &dbState{ptr: ptr, colls: map[*collState]struct{}{}}}
	runtime.SetFinalizer(db, (*DB).Close)
	return db, nil
}

// Close closes every collection handle obtained from this database, flushes
// every WAL and closes the database. Idempotent.
func (db *DB) Close() error {
	s := db.s
	s.mu.Lock()
	if s.ptr != nil {
		for cs := range s.colls {
			cs.close()
		}
		s.colls = nil
		C.aidb_db_close(s.ptr)
		s.ptr = nil
	}
	s.mu.Unlock()
	runtime.SetFinalizer(db, nil)
	return nil
}

func (db *DB) acquire(op string) (*C.aidb_db, error) {
	db.s.mu.RLock()
	if db.s.ptr == nil {
		db.s.mu.RUnlock()
		return nil, errClosed(op)
	}
	return db.s.ptr, nil
}

func (db *DB) forget(cs *collState) {
	db.s.mu.Lock()
	delete(db.s.colls, cs)
	db.s.mu.Unlock()
}

// openCollection runs f (which creates or opens a collection handle) under
// the exclusive lock, so Close cannot slip in between the C call and the
// registration of the handle (the C API wants collection handles closed
// before their database).
func (db *DB) openCollection(op string, f func(*C.aidb_db, **C.aidb_collection, **C.char) C.int) (*Collection, error) {
	db.s.mu.Lock()
	defer db.s.mu.Unlock()
	if db.s.ptr == nil {
		return nil, errClosed(op)
	}
	var ptr *C.aidb_collection
	var msg *C.char
	if err := check(op, f(db.s.ptr, &ptr, &msg), msg); err != nil {
		return nil, err
	}
	c := newCollection(ptr, db)
	db.s.colls[c.s] = struct{}{}
	return c, nil
}

// CreateCollection creates a collection in the database (opts.WALPath is
// ignored) and returns a handle to it.
func (db *DB) CreateCollection(opts CollectionOptions) (*Collection, error) {
	if err := noNUL("create_collection", "name", opts.Name); err != nil {
		return nil, err
	}
	var copts C.aidb_collection_options
	free := fillOptions(&opts, &copts)
	defer free()
	copts.wal_path = nil
	return db.openCollection("create_collection", func(p *C.aidb_db, out **C.aidb_collection, msg **C.char) C.int {
		return C.aidb_db_create_collection(p, &copts, out, msg)
	})
}

// Collection returns a new handle to an existing collection (ErrNotFound if
// there is none).
func (db *DB) Collection(name string) (*Collection, error) {
	if err := noNUL("open_collection", "name", name); err != nil {
		return nil, err
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	return db.openCollection("open_collection", func(p *C.aidb_db, out **C.aidb_collection, msg **C.char) C.int {
		return C.aidb_db_open_collection(p, cname, out, msg)
	})
}

func (db *DB) nameOp(op, name string, f func(*C.aidb_db, *C.char, **C.char) C.int) error {
	if err := noNUL(op, "name", name); err != nil {
		return err
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	p, err := db.acquire(op)
	if err != nil {
		return err
	}
	defer db.s.mu.RUnlock()
	var msg *C.char
	return check(op, f(p, cname, &msg), msg)
}

// DropCollection deletes a collection and its files. Outstanding handles then
// fail with ErrNotFound.
func (db *DB) DropCollection(name string) error {
	return db.nameOp("drop_collection", name, func(p *C.aidb_db, n *C.char, m **C.char) C.int {
		return C.aidb_db_drop_collection(p, n, m)
	})
}

// Collections returns the names of all collections, sorted.
func (db *DB) Collections() ([]string, error) {
	const op = "list_collections"
	p, err := db.acquire(op)
	if err != nil {
		return nil, err
	}
	defer db.s.mu.RUnlock()
	var names **C.char
	var n C.size_t
	var msg *C.char
	if err := check(op, C.aidb_db_list_collections(p, &names, &n, &msg), msg); err != nil {
		return nil, err
	}
	defer C.aidb_free_string_array(names, n)
	out := make([]string, int(n))
	if n > 0 {
		for i, s := range unsafe.Slice(names, int(n)) {
			out[i] = C.GoString(s)
		}
	}
	return out, nil
}

// Snapshot snapshots a collection into <dir>/<name>/snapshots/, truncates its
// WAL, and returns the snapshot's path.
func (db *DB) Snapshot(name string) (string, error) {
	var path *C.char
	if err := db.nameOp("snapshot", name, func(p *C.aidb_db, n *C.char, m **C.char) C.int {
		return C.aidb_db_snapshot(p, n, &path, m)
	}); err != nil {
		return "", err
	}
	defer C.aidb_free(unsafe.Pointer(path))
	return C.GoString(path), nil
}

// SnapshotInfo describes a snapshot file.
type SnapshotInfo struct {
	Path      string
	LSN       uint64 // last LSN the snapshot covers
	SizeBytes uint64
	Created   time.Time
	Count     uint64 // points in the snapshot
}

func snapshotInfo(i *C.aidb_snapshot_info) SnapshotInfo {
	return SnapshotInfo{
		Path:      C.GoString(&i.path[0]),
		LSN:       uint64(i.lsn),
		SizeBytes: uint64(i.size_bytes),
		Created:   time.Unix(0, int64(i.created_unix_ns)),
		Count:     uint64(i.count),
	}
}

// Snapshots lists a collection's snapshots, oldest first.
func (db *DB) Snapshots(name string) ([]SnapshotInfo, error) {
	var infos *C.aidb_snapshot_info
	var n C.size_t
	if err := db.nameOp("list_snapshots", name, func(p *C.aidb_db, cn *C.char, m **C.char) C.int {
		return C.aidb_db_list_snapshots(p, cn, &infos, &n, m)
	}); err != nil {
		return nil, err
	}
	defer C.aidb_free(unsafe.Pointer(infos))
	all := unsafe.Slice(infos, int(n))
	out := make([]SnapshotInfo, len(all))
	for i := range all {
		out[i] = snapshotInfo(&all[i])
	}
	return out, nil
}

// Restore runs the restore workflow of docs/operations.md on a collection:
// load the snapshot at path (absolute, or relative to its snapshots folder),
// replay newer WAL records, and seal the result as the new baseline.
func (db *DB) Restore(name, path string) error {
	if err := noNUL("restore", "path", path); err != nil {
		return err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return db.nameOp("restore", name, func(p *C.aidb_db, n *C.char, m **C.char) C.int {
		return C.aidb_db_restore(p, n, cpath, m)
	})
}
