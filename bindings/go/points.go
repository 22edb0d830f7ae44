package aidb

/*
#include <aidb.h>
#include <stdlib.h>
*/
import "C"

import (
	"encoding/json"
	"runtime"
	"unsafe"
)

// Upsert inserts or replaces one point. payload is nil, JSON bytes/string,
// or a value encoding/json turns into an object. The vector is not copied.
func (c *Collection) Upsert(id string, vector []float32, payload any) error {
	const op = "upsert"
	pl, err := payloadBytes(op, payload)
	if err != nil {
		return err
	}
	var cpl *C.char
	if pl != nil {
		if len(pl) == 0 {
			return invalid(op, "empty payload")
		}
		cpl = (*C.char)(unsafe.Pointer(&pl[0]))
	}
	if err := noNUL(op, "id", id); err != nil {
		return err
	}
	cid := C.CString(id)
	defer C.free(unsafe.Pointer(cid))
	err = c.do(op, func(p *C.aidb_collection, msg **C.char) C.int {
		return C.aidb_collection_upsert(p, cid, floatPtr(vector), C.size_t(len(vector)),
			cpl, C.size_t(len(pl)), msg)
	})
	runtime.KeepAlive(vector)
	runtime.KeepAlive(pl)
	return err
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

// cStringArray copies strs into a C array of NUL-terminated C strings (cgo
// forbids passing Go memory that holds Go pointers); a nil entry stays NULL.
// The returned func frees the array and its strings.
func cStringArray(strs [][]byte) (**C.char, func()) {
	n := len(strs)
	ptrSize := C.size_t(unsafe.Sizeof((*C.char)(nil)))
	arr := unsafe.Slice((**C.char)(C.malloc(ptrSize*C.size_t(n))), n)
	for i, s := range strs {
		arr[i] = nil
		if s != nil {
			arr[i] = (*C.char)(C.CBytes(append(s[:len(s):len(s)], 0)))
		}
	}
	return &arr[0], func() {
		for _, s := range arr {
			C.free(unsafe.Pointer(s))
		}
		C.free(unsafe.Pointer(&arr[0]))
	}
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
	idBytes := make([][]byte, n)
	for i, id := range ids {
		if err := noNUL(op, "id", id); err != nil {
			return err
		}
		idBytes[i] = []byte(id)
	}
	cids, freeIDs := cStringArray(idBytes)
	defer freeIDs()
	var cpl **C.char
	if payloads != nil {
		var freePayloads func()
		cpl, freePayloads = cStringArray(payloads)
		defer freePayloads()
	}
	err := c.do(op, func(p *C.aidb_collection, msg **C.char) C.int {
		return C.aidb_collection_upsert_batch(p, C.size_t(n), cids, floatPtr(vectors),
			C.size_t(len(vectors)/n), cpl, msg)
	})
	runtime.KeepAlive(vectors)
	return err
}

// Delete removes a point; ErrNotFound if there is none.
func (c *Collection) Delete(id string) error {
	if err := noNUL("delete", "id", id); err != nil {
		return err
	}
	cid := C.CString(id)
	defer C.free(unsafe.Pointer(cid))
	return c.do("delete", func(p *C.aidb_collection, msg **C.char) C.int {
		return C.aidb_collection_delete(p, cid, msg)
	})
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
	if err := noNUL("get", "id", id); err != nil {
		return nil, err
	}
	cid := C.CString(id)
	defer C.free(unsafe.Pointer(cid))
	var pl *C.char
	err := c.do("get", func(p *C.aidb_collection, msg **C.char) C.int {
		return C.aidb_collection_get(p, cid, floatPtr(vec), C.size_t(len(vec)), &pl, msg)
	})
	runtime.KeepAlive(vec)
	if err != nil || pl == nil {
		return nil, err
	}
	defer C.aidb_free(unsafe.Pointer(pl))
	return json.RawMessage(C.GoString(pl)), nil
}
