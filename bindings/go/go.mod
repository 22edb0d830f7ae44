module aidb/bindings/go

go 1.22
