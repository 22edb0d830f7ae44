package aidb

/*
#include <aidb.h>
#include <stdlib.h>
*/
import "C"

import (
	"strings"
	"unsafe"
)

// Code is an AIDB status code (the AIDB_* constants of aidb.h). A Code is an
// error itself, so the exported Err* values work as sentinels with errors.Is:
//
//	if errors.Is(err, aidb.ErrNotFound) { ... }
//
// Later library versions may return codes this package does not name; they
// are still errors, and Code.String reports the library's name for them.
type Code int

// Status codes of aidb.h.
const (
	CodeOK                Code = C.AIDB_OK
	CodeInvalidArgument   Code = C.AIDB_INVALID_ARGUMENT
	CodeNotFound          Code = C.AIDB_NOT_FOUND
	CodeAlreadyExists     Code = C.AIDB_ALREADY_EXISTS
	CodeDimensionMismatch Code = C.AIDB_DIMENSION_MISMATCH
	CodeIOError           Code = C.AIDB_IO_ERROR
	CodeCorruption        Code = C.AIDB_CORRUPTION
	CodeMisuse            Code = C.AIDB_MISUSE
	CodeNoMemory          Code = C.AIDB_NO_MEMORY
	CodeUnsupported       Code = C.AIDB_UNSUPPORTED
	CodeInternal          Code = C.AIDB_INTERNAL
	CodeBusy              Code = C.AIDB_BUSY
)

// Sentinel errors, one per status code, for errors.Is.
var (
	ErrInvalidArgument   error = CodeInvalidArgument
	ErrNotFound          error = CodeNotFound
	ErrAlreadyExists     error = CodeAlreadyExists
	ErrDimensionMismatch error = CodeDimensionMismatch
	ErrIO                error = CodeIOError
	ErrCorruption        error = CodeCorruption
	ErrMisuse            error = CodeMisuse
	ErrNoMemory          error = CodeNoMemory
	ErrUnsupported       error = CodeUnsupported
	ErrInternal          error = CodeInternal
	// ErrBusy: a nonblocking call (SearchOptions.Nonblocking) found a lock
	// taken, or an HNSW walk far longer than ef predicts; nothing changed.
	// Retry, or search without Nonblocking.
	ErrBusy error = CodeBusy
)

// ErrClosed is returned by every method of a Collection, DB or WALIterator
// after Close. It matches ErrMisuse too.
var ErrClosed = &Error{Code: CodeMisuse, Op: "aidb", Message: "handle is closed"}

// String returns the library's name of the code, e.g. "NOT_FOUND".
func (c Code) String() string { return C.GoString(C.aidb_status_name(C.int(c))) }

// Error implements error.
func (c Code) Error() string { return "aidb: " + c.String() }

// Error is a failed AIDB call: the status code, the library's message, and
// the operation that failed. It unwraps to its Code, so errors.Is(err,
// aidb.ErrNotFound) works.
type Error struct {
	Code    Code
	Op      string // e.g. "upsert"
	Message string // the library's message; may be empty
}

func (e *Error) Error() string {
	s := "aidb: " + e.Op + ": " + e.Code.String()
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns the Code, so errors.Is matches the sentinel of the status.
func (e *Error) Unwrap() error { return e.Code }

// Is makes every closed-handle error match ErrClosed.
func (e *Error) Is(target error) bool {
	return target == ErrClosed && e.Code == CodeMisuse && e.Message == ErrClosed.Message
}

// errClosed returns the closed-handle error for operation op.
func errClosed(op string) error {
	return &Error{Code: CodeMisuse, Op: op, Message: ErrClosed.Message}
}

// check turns a status and an optional library message into an error, freeing
// the message with aidb_free.
func check(op string, rc C.int, msg *C.char) error {
	if rc == C.AIDB_OK {
		return nil
	}
	e := &Error{Code: Code(rc), Op: op}
	if msg != nil {
		e.Message = C.GoString(msg)
		C.aidb_free(unsafe.Pointer(msg))
	}
	return e
}

// invalid builds an INVALID_ARGUMENT error for checks done on the Go side.
func invalid(op, msg string) error {
	return &Error{Code: CodeInvalidArgument, Op: op, Message: msg}
}

// noNUL refuses a string with a NUL byte: C.CString would cut it there, so
// "<uuid>\x00junk" would reach the library as a valid <uuid>.
func noNUL(op, what string, ss ...string) error {
	for _, s := range ss {
		if strings.IndexByte(s, 0) >= 0 {
			return invalid(op, what+" contains a NUL byte")
		}
	}
	return nil
}
