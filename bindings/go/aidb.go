// Package aidb is the Go binding of AIDB, an embedded vector database engine.
//
// It is a thin layer over the C API (aidb.h) found through pkg-config:
//
//	#cgo pkg-config: aidb
//
// Handles (Collection, DB, WALIterator) are safe for concurrent use by many
// goroutines. Close them explicitly; a finalizer closes a forgotten handle as
// a safety net. Methods called after Close return ErrClosed.
//
// Vectors are []float32 and are handed to the library without copying.
// Payloads are JSON objects: pass []byte / json.RawMessage / string holding
// JSON, or any value encoding/json turns into an object (map[string]any, a
// struct, ...).
package aidb

/*
#cgo pkg-config: aidb
#include <aidb.h>
#include <stdlib.h>
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"io"
	"unsafe"
)

// Version is the version of the loaded library, e.g. "0.2.0".
func Version() string { return C.GoString(C.aidb_version()) }

// VersionNumber is the version of the loaded library as X*1000000+Y*1000+Z.
func VersionNumber() int { return int(C.aidb_version_number()) }

// HeaderVersionNumber is the version of aidb.h this package was compiled with.
const HeaderVersionNumber = C.AIDB_VERSION_NUMBER

// NewID returns a new random (version 4) UUID in canonical form.
func NewID() string {
	var buf [37]C.char
	C.aidb_uuid_generate(&buf[0])
	return C.GoString(&buf[0])
}

// CanonicalID checks a textual UUID and returns its canonical lower-case form.
func CanonicalID(id string) (string, error) {
	if err := noNUL("canonical_id", "id", id); err != nil {
		return "", err
	}
	cid := C.CString(id)
	defer C.free(unsafe.Pointer(cid))
	var buf [37]C.char
	var msg *C.char
	if err := check("canonical_id", C.aidb_uuid_canonical(cid, &buf[0], &msg), msg); err != nil {
		return "", err
	}
	return C.GoString(&buf[0]), nil
}

// Metric is a distance metric. Search scores are distances, lower is
// better: 1 - cosine similarity, the L2 distance, the negated dot product.
type Metric int

// Metrics.
const (
	Cosine    Metric = C.AIDB_METRIC_COSINE
	Euclidean Metric = C.AIDB_METRIC_EUCLIDEAN
	Dot       Metric = C.AIDB_METRIC_DOT
)

func (m Metric) String() string { return C.GoString(C.aidb_metric_name(C.int(m))) }

// IndexKind is the index of a collection.
type IndexKind int

// Index kinds.
const (
	Flat IndexKind = C.AIDB_INDEX_FLAT
	HNSW IndexKind = C.AIDB_INDEX_HNSW
	IVF  IndexKind = C.AIDB_INDEX_IVF
)

func (k IndexKind) String() string { return C.GoString(C.aidb_index_kind_name(C.int(k))) }

// Durability decides when a mutating call returns.
type Durability int

// Durability modes.
const (
	DurabilityFsync Durability = C.AIDB_DURABILITY_FSYNC
	DurabilityBatch Durability = C.AIDB_DURABILITY_BATCH
	DurabilityNone  Durability = C.AIDB_DURABILITY_NONE
)

func (d Durability) String() string { return C.GoString(C.aidb_durability_name(C.int(d))) }

// Quantization is what an HNSW walk scores (flat and IVF collections do not
// use it; see aidb.h).
type Quantization int

// Quantization modes.
const (
	// QuantizationSQ8: 8-bit codes in RAM, the candidates re-ranked with the
	// float vectors (the default).
	QuantizationSQ8 Quantization = C.AIDB_QUANTIZATION_SQ8
	// QuantizationNone: the float vectors; no codes are held.
	QuantizationNone Quantization = C.AIDB_QUANTIZATION_NONE
)

func (q Quantization) String() string {
	if q == QuantizationNone {
		return "none"
	}
	return "sq8"
}

// payloadBytes encodes a payload argument: nil means no payload.
func payloadBytes(op string, p any) ([]byte, error) {
	switch v := p.(type) {
	case nil:
		return nil, nil
	case []byte:
		return v, nil
	case json.RawMessage:
		return []byte(v), nil
	case string:
		return []byte(v), nil
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, invalid(op, fmt.Sprintf("payload: %v", err))
		}
		return b, nil
	}
}

// floatPtr returns a C pointer to the first element of v (nil when empty).
// The caller keeps v alive over the call with runtime.KeepAlive.
func floatPtr(v []float32) *C.float {
	if len(v) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&v[0]))
}

// VerifySnapshot checks a snapshot file without loading it.
func VerifySnapshot(path string) (SnapshotInfo, error) {
	if err := noNUL("verify_snapshot", "path", path); err != nil {
		return SnapshotInfo{}, err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var info C.aidb_snapshot_info
	var msg *C.char
	if err := check("verify_snapshot", C.aidb_snapshot_verify(cpath, &info, &msg), msg); err != nil {
		return SnapshotInfo{}, err
	}
	return snapshotInfo(&info), nil
}

// VerifyWAL checks every record checksum of a WAL file and returns the number
// of records and of valid bytes. A torn tail is not an error.
func VerifyWAL(path string) (records, validBytes uint64, err error) {
	if err := noNUL("verify_wal", "path", path); err != nil {
		return 0, 0, err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var r, b C.uint64_t
	var msg *C.char
	if err := check("verify_wal", C.aidb_wal_verify(cpath, &r, &b, &msg), msg); err != nil {
		return 0, 0, err
	}
	return uint64(r), uint64(b), nil
}

// Handles are io.Closers.
var (
	_ io.Closer = (*Collection)(nil)
	_ io.Closer = (*DB)(nil)
	_ io.Closer = (*WALIterator)(nil)
)
