module github.com/mantisdb/mantisdb

go 1.24
