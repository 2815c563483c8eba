// Package migrations embeds every module's SQL migrations in the binary,
// one folder per module: migrations/<module>/NNNN_name.sql (goose format).
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed user/*.sql product/*.sql order/*.sql payment/*.sql
var files embed.FS

// For returns the migrations of one module, rooted at its folder.
func For(module string) (fs.FS, error) {
	return fs.Sub(files, module)
}
