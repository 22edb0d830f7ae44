module github.com/aidb/aidb/bindings/go

go 1.22
