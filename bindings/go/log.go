package aidb

/*
#include <aidb.h>
*/
import "C"

import "sync/atomic"

// LogLevel is the severity of a library log event.
type LogLevel int

// Log levels.
const (
	LogDebug LogLevel = C.AIDB_LOG_DEBUG
	LogInfo  LogLevel = C.AIDB_LOG_INFO
	LogWarn  LogLevel = C.AIDB_LOG_WARN
	LogError LogLevel = C.AIDB_LOG_ERROR
	LogOff   LogLevel = C.AIDB_LOG_OFF
)

// LogEvent is one library log event, e.g. Target "aidb::storage", Event
// "wal_truncated", Fields `collection=docs size_bytes=0` (key=value pairs).
type LogEvent struct {
	Level  LogLevel
	Target string
	Event  string
	Fields string
}

var logger atomic.Pointer[func(LogEvent)]

// SetLogger routes the library's log events at or above minLevel to fn, which
// may be called from any thread, concurrently, and must not call back into
// AIDB. A nil fn silences the library. The setting is process-wide.
func SetLogger(minLevel LogLevel, fn func(LogEvent)) {
	if fn == nil {
		C.aidb_set_log_callback(nil, nil, C.int(minLevel))
		logger.Store(nil)
		return
	}
	logger.Store(&fn)
	setGoLogCallback(minLevel)
}

//export aidbGoLog
func aidbGoLog(_ *C.void, level C.int, target, event, fields *C.char) {
	fn := logger.Load()
	if fn == nil {
		return
	}
	(*fn)(LogEvent{
		Level:  LogLevel(level),
		Target: C.GoString(target),
		Event:  C.GoString(event),
		Fields: C.GoString(fields),
	})
}
