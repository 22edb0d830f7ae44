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

// CollectionOptions configures a collection. Zero values mean the library's
// defaults, as aidb_collection_options_init sets them (see aidb.h): cosine,
// flat, fsync durability, and the library's HNSW, batch-interval and mmap
// defaults.
type CollectionOptions struct {
	Name           string        // [A-Za-z0-9_-]{1,64}; required
	Dim            int           // 1..65536; required
	Metric         Metric        // default Cosine
	Index          IndexKind     // default Flat
	M              uint32        // HNSW links per node; 0 = the library's default
	EfConstruction uint32        // HNSW; 0 = the library's default
	EfSearch       uint32        // HNSW default breadth; 0 = adapt to k
	Durability     Durability    // default DurabilityFsync
	BatchInterval  time.Duration // DurabilityBatch sync interval; 0 = the library's default
	// WALPath is the write-ahead log of a standalone collection (see Open);
	// empty means in memory only. Ignored by DB.CreateCollection.
	WALPath string
	// WALMmapThreshold: WAL files at least this big are replayed through
	// mmap; 0 = the library's default.
	WALMmapThreshold uint64
	// Quantization: what an HNSW walk scores; default QuantizationSQ8.
	Quantization Quantization
	// VectorsOnDisk (any index): the float vectors live in a file-backed
	// mapping the page cache may evict; a standalone collection then needs
	// a WALPath (the file is placed beside it).
	VectorsOnDisk bool
	// IVF collections (Index IVF): partitions, partitions a search probes
	// and candidates re-ranked exactly; 0 = automatic for each (see
	// aidb_collection_options in aidb.h).
	IVFNList  uint32
	IVFNProbe uint32
	IVFRerank uint32
}

// cStrings allocates C strings and frees them all at once.
type cStrings []unsafe.Pointer

func (f *cStrings) add(s string) *C.char {
	p := C.CString(s)
	*f = append(*f, unsafe.Pointer(p))
	return p
}

func (f cStrings) free() {
	for _, p := range f {
		C.free(p)
	}
}

// fillOptions converts o into a C options struct, starting from the
// library's defaults. The returned func frees the C strings it allocated.
func fillOptions(o *CollectionOptions, c *C.aidb_collection_options) func() {
	C.aidb_collection_options_init(c)
	var strs cStrings
	c.name = strs.add(o.Name)
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
		c.wal_path = strs.add(o.WALPath)
	}
	if o.WALMmapThreshold != 0 {
		c.wal_mmap_threshold = C.uint64_t(o.WALMmapThreshold)
	}
	c.quantization = C.int(o.Quantization)
	if o.VectorsOnDisk {
		c.vectors_on_disk = 1
	}
	c.ivf_nlist = C.uint32_t(o.IVFNList)
	c.ivf_nprobe = C.uint32_t(o.IVFNProbe)
	c.ivf_rerank = C.uint32_t(o.IVFRerank)
	return strs.free
}
